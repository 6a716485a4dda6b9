"""The anchor studies through ``sweeplab run``: bad input is one line and exit status 2 with
nothing written; a tiny configuration trains to full training accuracy; ``--device``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sweeplab.cli.main import main
from sweeplab.errors import ConfigError
from sweeplab.studies.anchor.models import MODEL_TYPES, build_model
from sweeplab.studies.anchor.train import resolve_device

TINY = ["--n_train", "128", "--n_test", "64", "--d_state", "16", "--epochs", "50",
        "--lr", "0.005", "--batch_size", "32", "--log_interval", "25", "--save_interval", "0",
        "--gamma", "0.5", "--device", "cpu", "-q"]
"""128 samples, 200 AdamW steps at lr 5e-3: every model fits with a wide margin. Measured
over seeds 0-9 and 42, 1 and 2 threads, AVX-512, AVX2 and plain kernels
(``ATEN_CPU_CAPABILITY``), both gamma-init readings of the embeddings: train accuracy 1.0
in every run, the right logit ahead of the best wrong one by >= 4.3 on every sample. The
old 256 samples at lr 1e-2 (also 200 steps) sat on the edge: the Transformer's loss
spiked late and it ended anywhere from 0.86 to 1.0, the residual Mamba 0.94 to 1.0, as
floating-point rounding decided; 40 epochs at lr 1e-2 did not help (0.875)."""

BAD = [
    ("anchor-composite", ["--model_type", "bogus"], "invalid model_type=bogus",
     "allowed values are " + ", ".join(f"'{m}'" for m in MODEL_TYPES[:-1])),
    ("anchor-composite", ["--device", "tpu"], "invalid device=tpu", "'auto', 'cpu' or 'cuda'"),
    ("anchor-composite", ["--gamma", "0"], "invalid gamma=0", "must be > 0"),
    ("anchor-composite", ["--schedule", "linear"], "invalid schedule=linear", "warmup_cosine"),
    ("anchor-composite", ["--n_ood", "5"], "--n_ood", "for all flags"),
    ("inverse-sequence", ["--n_layers", "0"], "invalid n_layers=0", "must be >= 1"),
    ("inverse-sequence", ["--n_heldout", "5"], "--n_heldout", "for all flags"),
]


@pytest.mark.parametrize("study,args,key,allowed", BAD, ids=[" ".join(b[1]) for b in BAD])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, study, args, key,
                                                         allowed):
    out = tmp_path / "runs_out"
    assert main(["run", study, *args, "--out_dir", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:"), lines
    assert key in lines[0] and allowed in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize("study,model_type", [("anchor-composite", "mamba_standard"),
                                              ("anchor-composite", "transformer"),
                                              ("inverse-sequence", "mamba_residual")])
def test_tiny_configuration_fits_its_training_set(tmp_path, capsys, study, model_type):
    """128 samples, 50 epochs: training accuracy reaches 100% (Mamba, Transformer and the
    residual Mamba, through the study's own training loop), every run file is written."""
    extra = ["--n_heldout", "64"] if study == "anchor-composite" else ["--n_ood", "64"]
    assert main(["run", study, "--model_type", model_type, *TINY, *extra,
                 "--out_dir", str(tmp_path)]) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    final = json.loads((run_dir / "final.json").read_text())
    assert final["train_acc"] == 1.0, final
    assert json.loads((run_dir / "metrics.json").read_text()) == final
    for name in ("model.pt", "config.yaml", "train.log"):
        assert (run_dir / name).is_file(), name


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_cuda_where_there_is_none_is_a_config_error():
    with pytest.raises(ConfigError, match="invalid device=cuda: no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
@pytest.mark.parametrize("study", ["anchor-composite", "inverse-sequence"])
def test_cuda_where_there_is_none_is_refused_before_any_run_directory(tmp_path, capsys, study):
    out = tmp_path / "runs_out"
    assert main(["run", study, "--device", "cuda", "--out_dir", str(out)]) == 2
    spec = tmp_path / "grid.yaml"
    spec.write_text(f"study: {study}\nfixed: {{device: cuda}}\ngrid: {{seed: [1, 2]}}\n")
    assert main(["grid", str(spec), "--out_dir", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("invalid device=cuda: no CUDA device" in ln for ln in lines)
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_forward_matches_cpu():
    assert resolve_device("auto").type == "cuda" and resolve_device("cuda").type == "cuda"
    tokens = torch.randint(0, 111, (64, 8), generator=torch.Generator().manual_seed(0))
    for model_type in MODEL_TYPES:
        model = build_model(model_type, 111, 8, 2, d_model=32, d_state=16, gamma=0.5, seed=0)
        with torch.no_grad():
            expected = model(tokens)
            got = model.to("cuda")(tokens.to("cuda")).cpu()
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4, msg=model_type)
