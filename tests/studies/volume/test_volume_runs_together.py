"""Runs of a grid whose models train as one batch equal each run alone.

Runs of equal ``batch_key`` (here two model seeds and two data seeds) are handed to the
study's ``run_batch``: their models train in one batch, each on its own run's data, and
every run's directory ends as when the run goes alone (its own within-run batch): the same
files, models within float32 1e-5, the same final metrics. A run that fails alone fails
inside the batch with the same error while its batch-mate finishes; ``--batch off`` and
``batch: off`` keep one run at a time; a run stopped in a batch resumes alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from test_pipeline import TINY, _volume
from test_volume_batched import TOL, _cfg, _max_diff

from sweeplab.studies.volume import batched, pipeline
from sweeplab.studies.volume.batch_keys import batch_key
from sweeplab.studies.volume.batched import ModelJob, RunModels, train_runs_together
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.models import build_model

RUNS = ("model_0_data_0", "model_1_data_1")
FIXED = {**TINY, "n_directions": 2, "batch_size": 16, "lr": 3e-3}
"""lr 3e-3 and mini-batch 16: a regime where float32 training is not chaotic (see
test_volume_batched.py), 40 epochs of up to 8 steps."""




def _grid(tmp: Path, name: str, seeds: list[int], *flags: str, code: int = 0,
          **fixed) -> Path:
    out = tmp / name
    spec = tmp / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "minima-volume", "name": name,
        "run_name": "model_{model_seed}_data_{data_seed}",
        "fixed": {**FIXED, **fixed},
        "zip": {"model_seed": seeds, "data_seed": seeds},
    }))
    assert _volume("run", str(spec), "--out_dir", str(out), "--executor", "inline",
                   *flags) == code
    (grid,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return grid


def _models(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {p.name: torch.load(p, weights_only=True)["state_dict"]
            for p in sorted((run / "models").glob("m*.pt"))}


def _files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}


def _log(run: Path) -> str:
    return "".join(p.read_text() for p in (run / "logs").glob("*.log"))


def test_the_batch_key_holds_what_shapes_the_batch_and_only_that():
    base = VolumeConfig()
    assert batch_key(base) == batch_key(base.model_copy(update={
        "model_seed": 3, "data_seed": 2, "lr": 0.1, "epochs": 7, "extra_sizes": (0, 5),
        "category": "poison", "weight_decay": 0.1}))
    for change in ({"arch": "cnn"}, {"hidden": (64,)}, {"dataset": "mnist"},
                   {"optimizer": "sgd"}, {"category": "sam"}, {"batch_size": 32},
                   {"device": "cuda"}):
        assert batch_key(base) != batch_key(base.model_copy(update=change)), change
    assert batch_key(base.model_copy(update={"batch": "off"})) is None
    assert batch_key(base.model_copy(update={"stages": "perturb"})) is None
    check = ("import sys, sweeplab.studies.volume.batch_keys; "
             "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # the grid's driver imports it for every run


def _run_models(cfg: VolumeConfig, seed: int, sizes: tuple[int, ...]) -> RunModels:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(max(sizes), 1, 8, 8, generator=gen, dtype=torch.float64)
    y = (x.flatten(1)[:, :10] * 10).argmax(1)
    x = x.to(torch.get_default_dtype())
    return RunModels(cfg, x, y, [ModelJob(s, s) for s in sizes],
                     lambda: build_model(cfg, (8, 8), 10))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], indirect=True)
@pytest.mark.parametrize("category", ["low_data", "sam"])
def test_models_of_two_runs_in_one_batch_equal_each_run_batched_alone(dtype, category):
    """Two runs (model seeds 0 and 1, data of their own, lr and epochs of their own) in
    one batch vs each run's models batched alone: float64 1e-10, float32 1e-5."""
    first = _cfg(category=category, epochs=20, weight_decay=0.01, sam_rho=0.1)
    second = first.model_copy(update={"model_seed": 1, "lr": 2e-3, "epochs": 15})
    runs = [_run_models(first, 0, (40, 60, 100)), _run_models(second, 1, (30, 70))]
    together = train_runs_together(runs)
    for run, models in zip(runs, together, strict=True):
        (alone,) = train_runs_together([run])
        assert len(models) == len(alone) == len(run.jobs)
        for a, b in zip(models, alone, strict=True):
            assert next(a.parameters()).dtype == dtype
            assert _max_diff(a, b) <= TOL[dtype]
    assert _max_diff(together[0][0], together[1][0]) > 1e-3  # different runs, models


def test_two_runs_in_one_batch_equal_each_run_alone(tmp_path):
    together = _grid(tmp_path, "together", [0, 1])
    for name in RUNS:
        log = _log(together / name)
        assert "trained in a batch of 2 runs" in log
        assert "(one batch of 4 models of 2 runs)" in log
    for seed, name in enumerate(RUNS):
        alone = _grid(tmp_path, f"alone{seed}", [seed]) / name
        assert "trained in a batch" not in _log(alone)
        run = together / name
        assert _files(run) == _files(alone)
        mine, theirs = _models(run), _models(alone)
        assert mine.keys() == theirs.keys() == {"m0.pt", "m60.pt"}
        for m in mine:
            for k, v in mine[m].items():
                assert float((v - theirs[m][k]).abs().max()) <= 1e-5, (name, m, k)
        final = json.loads((run / "final.json").read_text())
        final_alone = json.loads((alone / "final.json").read_text())
        assert final.keys() == final_alone.keys()
        for k, v in final.items():
            if isinstance(v, float):
                assert v == pytest.approx(final_alone[k], rel=1e-4, abs=1e-6), k
        for table in ("volume.csv", "cutoffs.csv", "test_accuracies.csv"):
            assert (run / table).read_text().splitlines()[0] == \
                (alone / table).read_text().splitlines()[0]
    models = _models(together / RUNS[0])
    assert any(not torch.equal(v, _models(together / RUNS[1])["m0.pt"][k])
               for k, v in models["m0.pt"].items())  # the runs are different models


def test_a_run_that_fails_alone_fails_in_the_batch_and_its_mate_finishes(tmp_path,
                                                                          monkeypatch):
    """Run 1's data holds a sample of 1e38 (seen by its m=60 model): SGD's loss becomes
    NaN; alone the run fails with the loop's error, and in the batch with that same
    error, while run 0 ends done, as alone."""
    load = pipeline.load_volume_data

    def poisoned(cfg):
        data = load(cfg)
        if cfg.model_seed == 1:
            data.x[cfg.base_size + 10] = 1e38
        return data

    monkeypatch.setattr(pipeline, "load_volume_data", poisoned)
    sgd = {"optimizer": "sgd", "lr": 0.1}
    alone = _grid(tmp_path, "alone", [1], code=1, **sgd) / RUNS[1]
    together = _grid(tmp_path, "together", [0, 1], code=1, **sgd)
    error = yaml.safe_load((alone / "status.json").read_text())["error"]
    assert "training loss is NaN at epoch 10" in error
    failed = yaml.safe_load((together / RUNS[1] / "status.json").read_text())
    assert failed["state"] == "failed" and failed["error"] == error
    assert "train/m60: NonFiniteError in the batch" in _log(together / RUNS[1])
    done = yaml.safe_load((together / RUNS[0] / "status.json").read_text())
    assert done["state"] == "done" and (together / RUNS[0] / "final.json").exists()
    assert "(one batch of 4 models of 2 runs)" in _log(together / RUNS[0])


@pytest.mark.parametrize("how", ["flag", "config"])
def test_batch_off_runs_one_run_at_a_time(tmp_path, how):
    flags, fixed = (("--batch", "off"), {}) if how == "flag" else ((), {"batch": "off"})
    grid = _grid(tmp_path, "off", [0, 1], *flags, **fixed)
    for name in RUNS:
        log = _log(grid / name)
        assert "trained in a batch" not in log and "batched training" not in log
        assert (grid / name / "final.json").exists()


def test_a_run_stopped_in_the_batch_resumes_alone(tmp_path, monkeypatch):
    """SIGTERM while two runs train together: every model keeps its partial state, the
    runs are marked interrupted; the rerun resumes each run alone from its partials,
    and its models equal those of the uninterrupted batch within 1e-5 (other
    batch-mates: rounding only)."""
    whole = _grid(tmp_path, "whole", [0, 1], log_interval=1)
    real = batched.ModelRecord.log
    calls = {"n": 0}

    def log(self, step, **metrics):
        real(self, step, **metrics)
        calls["n"] += 1
        if calls["n"] == 40:  # a few epochs into training
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(batched.ModelRecord, "log", log)
    grid = _grid(tmp_path, "cut", [0, 1], code=130, log_interval=1)
    for name in RUNS:
        assert list((grid / name / "models").glob("*.partial.pt")), name
        assert yaml.safe_load((grid / name / "status.json").read_text())["interrupted"]
    monkeypatch.setattr(batched.ModelRecord, "log", real)
    grid = _grid(tmp_path, "cut", [0, 1], log_interval=1)
    for name in RUNS:
        log = _log(grid / name)
        assert "resuming its partial models alone" in log
        assert not list((grid / name / "models").glob("*.partial.pt"))
        for m, weights in _models(grid / name).items():
            for k, v in weights.items():
                assert float((v - _models(whole / name)[m][k]).abs().max()) <= 1e-5
