"""The minima-volume pipeline end to end: stages, their cache, interruption, the CLI.

Tiny real grids (scikit-learn digits, a 16-unit MLP) run through ``sweeplab volume``.
The cache is checked by what each stage leaves behind: a stage whose inputs did not
change must not rewrite its outputs (same bytes, same mtime), one whose inputs changed
must; a stage asked for without its inputs fails with a message naming them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from sweeplab.cli.main import main
from sweeplab.studies.volume.crossings import first_crossings

TINY = {
    "dataset": "digits", "base_size": 60, "extra_sizes": [0, 60], "test_size": 100,
    "hidden": [16], "epochs": 40, "batch_size": 32, "lr": 0.01, "n_directions": 6,
    "n_coefficients": 31, "max_coefficient": 3.0, "coarse_stride": 5,
    "loss_cutoffs": [0.5, 1.0], "log_interval": 10,
}


def _spec(tmp: Path, name: str = "tiny", **fixed) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "study": "minima-volume", "name": name,
        "run_name": "model_{model_seed}_data_{data_seed}",
        "fixed": {**TINY, **fixed}, "grid": {"model_seed": [0], "data_seed": [0]},
    }))
    return path


def _volume(*args: str) -> int:
    return main(["volume", *args])


def _run_dir(out: Path) -> Path:
    (grid,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return grid / "model_0_data_0"


def _mtimes(run: Path) -> dict[str, int]:
    names = ["models/m0.pt", "models/m60.pt", "perturb/m0.npz", "perturb/m60.npz",
             "volume.csv", "cutoffs.csv", "test_accuracies.csv", "data/split.npz"]
    return {n: (run / n).stat().st_mtime_ns for n in names}


def test_all_stages_write_their_outputs(tmp_path):
    out = tmp_path / "out"
    assert _volume("run", str(_spec(tmp_path)), "--out_dir", str(out), "--executor", "inline") == 0
    run = _run_dir(out)
    for name in ("models/m0.pt", "models/m60.pt", "data/split.npz", "perturb/m0.npz",
                 "volume.csv", "volume.json", "cutoffs.csv", "cutoffs.json",
                 "cutoffs/loss_curves.npz", "test_accuracies.csv", "test_accuracies.json",
                 "metrics.jsonl", "final.json"):
        assert (run / name).is_file(), name
    volume = pd.read_csv(run / "volume.csv")
    assert len(volume) == 2 * 2 * 2  # models x cutoffs x landscapes (60, 120)
    assert set(volume["landscape_size"]) == {60, 120}
    assert (volume["n_directions"] == 6).all()
    # a higher cutoff never shrinks a minimum: radii are first crossings of a higher level
    wide = volume.pivot_table(index=["m", "landscape_size"], columns="cutoff", values="log_volume")
    assert (wide[1.0] >= wide[0.5]).all()
    test = pd.read_csv(run / "test_accuracies.csv")
    assert list(test["m"]) == [0, 60] and test["test_acc"].between(0.3, 1.0).all()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["m"] for r in rows] == [0, 60]
    assert {"train_acc", "test_acc", "log_volume", "zero_volume", "cutoff_size"} <= set(rows[0])
    own = volume[(volume["cutoff"] == 0.5) & (volume["landscape_size"] == volume["train_size"])]
    for row, lv in zip(rows, own.sort_values("m")["log_volume"], strict=True):
        assert row["zero_volume"] == float(np.isneginf(lv))  # -inf is null in metrics.jsonl
        assert row["log_volume"] is None if np.isneginf(lv) else row["log_volume"] == lv
    saved = torch.load(run / "models" / "m60.pt", weights_only=True)
    assert saved["train_size"] == 120 and saved["train_acc"] > 0.9
    # the split saved is the one the run's config draws: rows of the source, as trained
    from sweeplab.studies.volume.config import VolumeConfig
    from sweeplab.studies.volume.data import load_volume_data

    data = load_volume_data(VolumeConfig.from_mapping(
        yaml.safe_load((run / "config.yaml").read_text())["config"]))
    with np.load(run / "data" / "split.npz") as split:
        assert split["pool_index"].shape == (120,) and split["test_index"].shape == (100,)
        np.testing.assert_array_equal(split["pool_index"], data.pool_index)
        np.testing.assert_array_equal(split["test_index"], data.test_index)
        np.testing.assert_array_equal(split["labels"], data.labels.numpy())
    # cutoffs: read independently off the saved unperturbed loss curves
    cutoffs = pd.read_csv(run / "cutoffs.csv")
    assert len(cutoffs) == 2 * 2
    with np.load(run / "cutoffs" / "loss_curves.npz") as npz:
        curves = {k: npz[k] for k in npz.files}
    for row in cutoffs.itertuples():
        curve = curves[f"m{row.m}"]
        assert curve.shape == (120,)
        above = np.flatnonzero(curve > row.cutoff)
        if above.size:
            assert row.first_crossing_size == above[0] + 1
        else:
            assert np.isnan(row.first_crossing_size)
        if row.crossed:  # above from cutoff_size to the end of the pool, not just before
            assert (curve[int(row.cutoff_size) - 1:] > row.cutoff).all()
            assert row.cutoff_size == 1 or curve[int(row.cutoff_size) - 2] <= row.cutoff
            assert row.first_crossing_size <= row.cutoff_size
        else:
            assert curve[-1] <= row.cutoff


def test_cache_skips_unchanged_stages_and_reruns_changed_ones(tmp_path):
    """One by one (batch: off): a model retrained alone is the same bytes again. Batched,
    a model's last bits depend on its batch-mates (test_volume_batched.py)."""
    out = tmp_path / "out"
    spec = _spec(tmp_path, batch="off")
    args = ["--out_dir", str(out), "--executor", "inline"]
    assert _volume("run", str(spec), *args) == 0
    run = _run_dir(out)
    first = _mtimes(run)

    assert _volume("run", str(spec), *args) == 0  # nothing changed: nothing rewritten
    assert _mtimes(run) == first
    assert "train/m0: cached" in (run / "logs" / "train.log").read_text()

    # new cutoffs: coarse-to-fine crossings, volumes and cutoffs again; models and test kept
    assert _volume("run", str(_spec(tmp_path, loss_cutoffs=[0.7], batch="off")), *args) == 0
    now = _mtimes(run)
    for same in ("models/m0.pt", "models/m60.pt", "test_accuracies.csv", "data/split.npz"):
        assert now[same] == first[same], same
    for redone in ("perturb/m0.npz", "volume.csv", "cutoffs.csv"):
        assert now[redone] != first[redone], redone
    assert set(pd.read_csv(run / "volume.csv")["cutoff"]) == {0.7}

    # a lost model is retrained alone (training is deterministic: same bytes again, so
    # what reads it is still valid); a model whose content changed is re-perturbed
    spec = _spec(tmp_path, loss_cutoffs=[0.7], batch="off")
    before = _mtimes(run)
    weights = (run / "models" / "m60.pt").read_bytes()
    (run / "models" / "m60.pt").unlink()
    assert _volume("run", str(spec), *args) == 0
    after = _mtimes(run)
    assert after["models/m0.pt"] == before["models/m0.pt"]
    assert after["models/m60.pt"] != before["models/m60.pt"]
    assert (run / "models" / "m60.pt").read_bytes() == weights
    assert after["perturb/m60.npz"] == before["perturb/m60.npz"]

    saved = torch.load(run / "models" / "m60.pt", weights_only=True)
    saved["state_dict"] = {k: v * 1.01 for k, v in saved["state_dict"].items()}
    torch.save(saved, run / "models" / "m60.pt")
    assert _volume("run", str(spec), *args) == 0
    changed = _mtimes(run)
    assert changed["perturb/m0.npz"] == after["perturb/m0.npz"]
    for redone in ("perturb/m60.npz", "volume.csv", "test_accuracies.csv"):
        assert changed[redone] != after[redone], redone


def test_grid_search_keeps_the_whole_grid_so_cutoffs_change_only_the_volume(tmp_path):
    out = tmp_path / "out"
    args = ["--out_dir", str(out), "--executor", "inline"]
    assert _volume("run", str(_spec(tmp_path, search="grid")), *args) == 0
    run = _run_dir(out)
    first = _mtimes(run)
    with np.load(run / "perturb" / "m0.npz") as npz:
        assert npz["loss"].shape == (6, 31, 2)  # directions x coefficients x landscapes
    assert _volume("run", str(_spec(tmp_path, search="grid", loss_cutoffs=[0.8])), *args) == 0
    now = _mtimes(run)
    assert now["perturb/m0.npz"] == first["perturb/m0.npz"]
    assert now["volume.csv"] != first["volume.csv"]


def test_the_default_executor_runs_the_grid_in_worker_processes(tmp_path):
    """``sweeplab volume run CONFIG --out_dir D`` with no executor flag: the local pool.

    ``--batch off``: batched, the two seeds would be one unit, which the driver runs
    inline (test_volume_runs_together.py)."""
    spec = tmp_path / "seeds.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "minima-volume", "name": "seeds",
        "run_name": "model_{model_seed}_data_{data_seed}",
        "fixed": {**TINY, "extra_sizes": [0], "epochs": 5, "n_directions": 2},
        "grid": {"model_seed": [0, 1], "data_seed": [0]},
    }))
    out = tmp_path / "out"
    assert _volume("run", str(spec), "--out_dir", str(out), "-j", "2", "--batch", "off") == 0
    (grid,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    runs = sorted(p.name for p in grid.iterdir() if p.is_dir() and p.name.startswith("model_"))
    assert runs == ["model_0_data_0", "model_1_data_0"]
    for name in runs:
        status = json.loads((grid / name / "status.json").read_text())
        assert status["state"] == "done" and status["pid"] != os.getpid()
        assert (grid / name / "volume.csv").is_file()
    # the seeds are replicates that differ: model_seed changes the trained weights
    a, b = (torch.load(grid / n / "models" / "m0.pt", weights_only=True)["state_dict"]
            for n in runs)
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_one_stage_alone_and_a_missing_input(tmp_path):
    out = tmp_path / "out"
    spec = str(_spec(tmp_path))
    args = ["--out_dir", str(out), "--executor", "inline"]
    assert _volume("stage", "train", spec, *args) == 0
    run = _run_dir(out)
    assert (run / "models" / "m60.pt").is_file() and not (run / "perturb").exists()
    assert _volume("stage", "volume", spec, *args) == 1  # perturb has not run
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "perturb/m0" in status["error"]
    assert _volume("stage", "perturb", spec, *args) == 0
    assert _volume("stage", "volume", spec, *args) == 0
    assert (run / "volume.csv").is_file() and not (run / "test_accuracies.csv").exists()


@pytest.mark.parametrize("argv, key", [
    (["stage", "bogus", "x.yaml"], "stage"),
    (["stage"], "stage"),
    (["stage", "--out_dir", "d", "x.yaml"], "stage"),
    (["walk", "x.yaml"], "action"),
])
def test_bad_verbs_are_one_line_errors(argv, key, capsys):
    assert _volume(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err and "allowed values" in err


@pytest.mark.parametrize(("fixed", "key", "allowed"), [
    ({"category": "bogus"}, "category", "'low_data', 'poison' or 'sam'"),
    ({"arch": "resnet"}, "arch", "'mlp' or 'cnn'"),
    ({"loss_cutoffs": [0.5, -1]}, "loss_cutoffs", "positive"),
    ({"loss_cutoffs": [1.0, 0.5]}, "loss_cutoffs", "increasing and distinct"),
    ({"hidden": [16, 0]}, "hidden", ">= 1"),
    ({"arch": "cnn", "channels": [4, 4, 4, 4]}, "channels", "at most 3 entries"),
    ({"extra_sizes": [0, 2000]}, "extra_sizes", "digits has 1797 samples"),
    ({"direction_scaling": "unit"}, "direction_scaling", "'filtnorm' or 'li'"),
    ({"coefficient_grid": "log"}, "coefficient_grid", "'linear' or 'quadratic'"),
    ({"uncrossed": "cap"}, "uncrossed", "'lower_bound' or 'drop'"),
    ({"normalize": [0.5, 0.0]}, "normalize", "std > 0"),
    pytest.param({"device": "cuda"}, "device", "no CUDA device", marks=pytest.mark.skipif(
        torch.cuda.is_available(), reason="a GPU is visible here")),
])
def test_bad_config_values_are_one_line_errors_before_any_work(tmp_path, capsys, fixed, key,
                                                               allowed):
    out = tmp_path / "out"
    assert _volume("run", str(_spec(tmp_path, **fixed)), "--out_dir", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"invalid {key}=" in err and allowed in err
    assert not out.exists() or not any(out.rglob("*.pt"))  # nothing trained


def test_uncrossed_directions_are_counted_and_reported_on_every_visit(tmp_path):
    """A ray too short to reach the cutoff: every radius is the range end, counted in
    volume.csv and said in final.json, again when the run is visited with all cached."""
    out = tmp_path / "out"
    spec = _spec(tmp_path, extra_sizes=[0], max_coefficient=0.001, loss_cutoffs=[5.0])
    args = ["--out_dir", str(out), "--executor", "inline"]
    for _ in range(2):
        assert _volume("run", str(spec), *args) == 0
        run = _run_dir(out)
        volume = pd.read_csv(run / "volume.csv")
        assert (volume["n_uncrossed"] == 6).all() and volume["lower_bound"].all()
        with np.load(run / "perturb" / "m0.npz") as npz:
            norms, end = npz["raw_norms"], npz["coefficients"][-1]
            n = int(npz["n_params"])
        log_r = n * np.log(end * norms)  # every radius is the range end x the raw norm
        expected = log_r.max() + np.log(np.mean(np.exp(log_r - log_r.max())))
        assert volume["log_volume"].to_numpy() == pytest.approx(expected, rel=1e-9)
        final = json.loads((run / "final.json").read_text())
        (warning,) = [w for w in final.get("warnings", []) if "never reach" in w]
        assert warning.startswith("6 of 6 radii never reach their loss cutoff")
        assert "1 of 1 log-volumes" in warning
    assert "volume: cached" in (run / "logs" / "train.log").read_text()


def test_cnn_sam_coarse_to_fine_equals_the_grid_and_rho_retrains(tmp_path, monkeypatch):
    """The small CNN (vmap path) trained with SAM: the crossings coarse-to-fine finds are
    those of the exhaustive grid scan; eval_batch bounds the batches; sam_rho retrains."""
    from sweeplab.studies.volume import landscape

    batches: list[int | None] = []
    real_plan = landscape._plan_batches

    def plan(*args):
        batches.append(args[-1])  # max_batch
        return real_plan(*args)

    monkeypatch.setattr(landscape, "_plan_batches", plan)
    out = tmp_path / "out"
    args = ["--out_dir", str(out), "--executor", "inline"]
    cnn = {"category": "sam", "sam_rho": 0.05, "arch": "cnn", "channels": [4],
           "n_directions": 8}
    assert _volume("run", str(_spec(tmp_path, search="grid", eval_batch=5, **cnn)), *args) == 0
    assert batches and set(batches) == {5}
    run = _run_dir(out)
    models = {m: (run / "models" / f"m{m}.pt").read_bytes() for m in (0, 60)}
    exhaustive = {}
    for m in (0, 60):
        with np.load(run / "perturb" / f"m{m}.npz") as npz:
            assert npz["loss"].shape == (8, 31, 2)
            exhaustive[m] = first_crossings(npz["loss"], TINY["loss_cutoffs"])
    grid_volume = pd.read_csv(run / "volume.csv")

    batches.clear()
    assert _volume("run", str(_spec(tmp_path, **cnn)), *args) == 0  # coarse_to_fine
    assert batches and set(batches) == {None}
    for m in (0, 60):
        assert (run / "models" / f"m{m}.pt").read_bytes() == models[m]  # not retrained
        with np.load(run / "perturb" / f"m{m}.npz") as npz:
            np.testing.assert_array_equal(npz["index"], exhaustive[m])
            assert int(npz["n_evaluated"]) < 8 * 31
        # a real search: crossings off the coarse grid, not only at 0 or never
        assert np.isin(exhaustive[m], np.arange(0, 31, 5), invert=True).any()
    pd.testing.assert_frame_equal(pd.read_csv(run / "volume.csv"), grid_volume)

    assert _volume("run", str(_spec(tmp_path, **{**cnn, "sam_rho": 0.2})), *args) == 0
    for m in (0, 60):
        assert (run / "models" / f"m{m}.pt").read_bytes() != models[m]


def test_a_grid_of_another_study_is_refused(tmp_path, capsys):
    spec = tmp_path / "other.yaml"
    spec.write_text(yaml.safe_dump({"study": "implicit-bias", "fixed": {}, "grid": {}}))
    assert _volume("run", str(spec), "--out_dir", str(tmp_path / "out")) == 2
    assert "minima-volume" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_template_is_a_valid_grid(tmp_path):
    assert main(["new", "volume-experiment", "wide_mlp", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "wide_mlp.yaml"
    text = path.read_text()
    assert "(one of: low_data, poison, sam)" in text and "(one of: mlp, cnn)" in text
    spec = yaml.safe_load(text)
    assert spec["study"] == "minima-volume" and spec["name"] == "wide_mlp"
    assert {"category", "arch", "sam_rho", "loss_cutoffs"} <= set(spec["fixed"])
    spec["fixed"].update(TINY)
    spec["fixed"]["epochs"] = 2
    spec["grid"] = {"model_seed": [0], "data_seed": [0]}
    path.write_text(yaml.safe_dump(spec))
    assert _volume("run", str(path), "--out_dir", str(tmp_path / "out"),
                   "--executor", "inline") == 0
    assert main(["new", "volume-experiment", "wide_mlp", "--dir", str(tmp_path)]) == 2


def _cli(spec: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "volume", "run", str(spec), "--out_dir", str(out),
         "--executor", "inline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sigterm_at_log_line(proc: subprocess.Popen, out: Path, text: str) -> Path:
    """SIGTERM ``proc`` once the first run's train.log under ``out`` holds ``text``; check
    it exits 130 (interrupted); return that run's directory."""
    deadline = time.monotonic() + 120
    log = None
    while time.monotonic() < deadline:
        logs = list(out.glob("*/model_0_data_0/logs/train.log"))
        if logs and text in logs[0].read_text():
            log = logs[0]
            break
        time.sleep(0.05)
    assert log is not None, "training never started"
    os.kill(proc.pid, signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    return log.parent.parent


def test_sigterm_keeps_the_partial_model_and_the_rerun_matches(tmp_path):
    long = {"extra_sizes": [0], "epochs": 3000, "log_interval": 1, "n_directions": 2}
    whole = _cli(_spec(tmp_path, "whole", **long), tmp_path / "whole")
    _, err = whole.communicate(timeout=600)  # read the pipes: a full one would block it
    assert whole.returncode == 0, err

    spec = _spec(tmp_path, "cut", **long)
    proc = _cli(spec, tmp_path / "cut")
    run = sigterm_at_log_line(proc, tmp_path / "cut", "epoch 5 ")
    partial = torch.load(run / "models" / "m0.partial.pt", weights_only=True)
    assert 0 < partial["state"]["epoch"] < 3000
    assert not (run / "models" / "m0.pt").exists()

    resumed = _cli(spec, tmp_path / "cut")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert "continuing from epoch" in (run / "logs" / "train.log").read_text()
    a = torch.load(run / "models" / "m0.pt", weights_only=True)["state_dict"]
    b = torch.load(_run_dir(tmp_path / "whole") / "models" / "m0.pt",
                   weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not (run / "models" / "m0.partial.pt").exists()


def test_volume_stage_matches_an_independent_computation(tmp_path):
    """log V = log mean_i (c_i |d_i|)^n from the saved grid, for both radius norms."""
    out = tmp_path / "out"
    args = ["--out_dir", str(out), "--executor", "inline"]
    for radius_norm in ("raw", "scaled"):
        spec = _spec(tmp_path, search="grid", radius_norm=radius_norm)
        assert _volume("run", str(spec), *args) == 0
        run = _run_dir(out)
        table = pd.read_csv(run / "volume.csv")
        assert set(table["radius_norm"]) == {radius_norm}
        with np.load(run / "perturb" / "m60.npz") as npz:
            loss, coef, n = npz["loss"], npz["coefficients"], int(npz["n_params"])
            norms = npz["raw_norms" if radius_norm == "raw" else "direction_norms"]
        for cutoff in TINY["loss_cutoffs"]:
            for s, size in enumerate((60, 120)):
                over = loss[:, :, s] > cutoff
                first = np.where(over.any(1), over.argmax(1), len(coef) - 1)
                log_r = np.log(coef[first] * norms)
                top = (n * log_r).max()
                expected = top + np.log(np.mean(np.exp(n * log_r - top)))
                row = table[(table["m"] == 60) & (table["cutoff"] == cutoff)
                            & (table["landscape_size"] == size)]
                assert float(row["log_volume"].iloc[0]) == pytest.approx(expected, rel=1e-9)


def test_one_run_from_the_command_line_with_list_flags(tmp_path):
    argv = ["run", "minima-volume", "--extra_sizes", "0", "30", "--base_size", "50",
            "--test_size", "50", "--hidden", "8", "--epochs", "5", "--n_directions", "2",
            "--loss_cutoffs", "0.3", "1.0", "--out_dir", str(tmp_path), "-q"]
    assert main(argv) == 0
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    config = yaml.safe_load((run / "config.yaml").read_text())["config"]
    assert config["extra_sizes"] == [0, 30] and config["loss_cutoffs"] == [0.3, 1.0]
    assert sorted(pd.read_csv(run / "volume.csv")["cutoff"].unique()) == [0.3, 1.0]


def test_poison_headline_volume_is_the_one_on_the_clean_base_set(tmp_path):
    """A poisoned model's headline log-volume equals the one computed directly on the clean
    base set alone (the authors' poison notebooks); its own landscape has its own name."""
    from sweeplab.studies.volume.config import VolumeConfig
    from sweeplab.studies.volume.data import load_volume_data
    from sweeplab.studies.volume.directions import flatten_params, make_directions, raw_norms
    from sweeplab.studies.volume.landscape import LandscapeData, scan_grid
    from sweeplab.studies.volume.models import build_model
    from sweeplab.studies.volume.pipeline import coefficient_grid
    from sweeplab.studies.volume.volume_math import volume_table

    out = tmp_path / "out"
    fixed = {"category": "poison", "search": "grid", "coefficient_grid": "quadratic",
             "extra_sizes": [0, 20], "loss_cutoffs": [1.0, 2.0]}
    assert _volume("run", str(_spec(tmp_path, **fixed)), "--out_dir", str(out),
                   "--executor", "inline") == 0
    run = _run_dir(out)
    final = json.loads((run / "final.json").read_text())
    cfg = VolumeConfig(**{**TINY, **fixed})
    data = load_volume_data(cfg)
    assert bool((data.labels[:60] == data.true_labels[:60]).all())  # the base set is clean
    assert bool((data.labels[60:] != data.true_labels[60:]).all())

    model = build_model(cfg, (8, 8), 10)
    saved = torch.load(run / "models" / "m20.pt", weights_only=True)
    model.load_state_dict(saved["state_dict"])
    params = {k: p.detach() for k, p in model.eval().named_parameters()}
    directions = make_directions(params, cfg.perturbation_seed, cfg.n_directions,
                                 cfg.direction_scaling)
    coef = coefficient_grid(cfg)
    base = LandscapeData(data.x[:60], data.labels[:60], (60,))
    loss, _ = scan_grid(model, flatten_params(params), directions, coef, base)
    rows = volume_table(first_crossings(loss, cfg.loss_cutoffs), coef,
                        raw_norms(params, cfg.perturbation_seed, cfg.n_directions).numpy(),
                        int(saved["n_params"]), list(cfg.loss_cutoffs), [60])
    direct = rows[0]["log_volume"]  # first cutoff, the base set
    assert np.isfinite(direct)
    assert final["log_volume_most"] == pytest.approx(direct, rel=1e-9)
    table = pd.read_csv(run / "volume.csv")
    head = table[table["headline"]]
    assert set(head["landscape_size"]) == {60}  # every model's headline: the base set
    # the own (poisoned) landscape stays available under its own name, and differs
    own = table[(table["m"] == 20) & (table["landscape_size"] == 80)
                & (table["cutoff"] == 1.0)]
    assert final["log_volume_own_most"] == pytest.approx(float(own["log_volume"].iloc[0]))
    assert final["log_volume_own_most"] != pytest.approx(direct)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["m"] == 20 and "log_volume_own" in rows[-1]


def test_directions_are_searched_in_blocks_with_the_same_result(tmp_path, monkeypatch):
    """K directions in blocks of DIRECTION_BLOCK give the crossings of one block of K."""
    from sweeplab.studies.volume import pipeline

    out_a, out_b = tmp_path / "a", tmp_path / "b"
    spec = _spec(tmp_path, n_directions=7)
    assert _volume("run", str(spec), "--out_dir", str(out_a), "--executor", "inline") == 0
    monkeypatch.setattr(pipeline, "DIRECTION_BLOCK", 3)
    assert _volume("run", str(spec), "--out_dir", str(out_b), "--executor", "inline") == 0
    for name in ("m0.npz", "m60.npz"):
        with np.load(_run_dir(out_a) / "perturb" / name) as a, \
                np.load(_run_dir(out_b) / "perturb" / name) as b:
            for key in ("index", "raw_norms", "direction_norms", "coarse_loss"):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    by_k = pd.read_csv(_run_dir(out_b) / "volume_by_k.csv")
    assert sorted(by_k["k"].unique()) == [7]  # no prefix in K_PREFIXES below 7
