"""Grids end to end: parallel runs, master.csv, resume, failures, kill -9, bad specs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from process_groups import run_group, started
from sweeplab.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def _spec(tmp_path: Path, epochs: int = 30, seeds=(0, 1), extra: dict | None = None) -> Path:
    spec = {
        "study": "implicit-bias",
        "fixed": {"epochs": epochs, "plots": False, "n_samples": 128, **(extra or {})},
        "grid": {"potential": ["quadratic", "lp"], "seed": list(seeds)},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _master(grid_dir: Path) -> list[dict]:
    with open(grid_dir / "master.csv") as fh:
        return list(csv.DictReader(fh))


def _grid_dir(out: Path) -> Path:
    (grid_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return grid_dir


def test_local_grid_writes_runs_and_master(tmp_path, capsys):
    out = tmp_path / "runs_out"
    code = main(["grid", str(_spec(tmp_path)), "--tag", "t", "--jobs", "2", "--out_dir", str(out),
                 "--executor", "local"])  # named: the work alone would run it inline
    assert code == 0, capsys.readouterr()
    assert "4 to run (local executor)" in capsys.readouterr().out
    grid_dir = _grid_dir(out)
    assert grid_dir.name.endswith("_t")
    rows = _master(grid_dir)
    assert sorted(r["run"] for r in rows) == sorted(
        f"potential={p},seed={s}" for p in ("quadratic", "lp") for s in (0, 1))
    assert all(r["state"] == "done" for r in rows)
    assert all(float(r["final.train_acc"]) == 1.0 for r in rows)
    assert {"potential", "seed", "lr", "duration_s", "final.angle_svm"} <= set(rows[0])
    assert (grid_dir / "spec.yaml").read_text() == (tmp_path / "spec.yaml").read_text()
    for r in rows:
        assert json.loads((grid_dir / r["run"] / "status.json").read_text())["state"] == "done"


def test_rerunning_the_same_command_resumes_and_skips_finished_runs(tmp_path, capsys):
    out = tmp_path / "runs_out"
    args = ["grid", str(_spec(tmp_path)), "--tag", "t", "--out_dir", str(out), "--executor",
            "inline"]
    assert main(args) == 0
    grid_dir = _grid_dir(out)
    started = {p.name: json.loads((p / "status.json").read_text())["started"]
               for p in grid_dir.iterdir() if (p / "status.json").exists()}
    capsys.readouterr()
    assert main(args) == 0
    assert "4 already done, 0 to run" in capsys.readouterr().out
    assert _grid_dir(out) == grid_dir
    again = {p.name: json.loads((p / "status.json").read_text())["started"]
             for p in grid_dir.iterdir() if (p / "status.json").exists()}
    assert again == started
    assert len(_master(grid_dir)) == 4
    # a changed config re-runs only what changed (more seeds: 2 new runs)
    _spec(tmp_path, seeds=(0, 1, 2))
    capsys.readouterr()
    assert main(args) == 0
    assert "4 already done, 2 to run" in capsys.readouterr().out
    assert len(_master(grid_dir)) == 6


def test_a_failing_run_is_data_and_the_grid_goes_on(tmp_path, capsys):
    out = tmp_path / "runs_out"
    spec = {
        "study": "implicit-bias",
        "fixed": {"epochs": 30, "plots": False, "n_samples": 128, "separation": 0.2,
                  "noise": 1.5, "loss": "exponential"},
        "grid": {"lr": [0.1, 100.0], "seed": [0, 1]},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["grid", str(path), "--tag", "f", "--out_dir", str(out), "--jobs", "2"])
    text = capsys.readouterr().out
    assert code == 1
    assert "2 done, 2 failed of 4 runs" in text
    grid_dir = _grid_dir(out)
    states = {r["run"]: (r["state"], r["error"]) for r in _master(grid_dir)}
    assert states["lr=100,seed=0"][0] == "failed" and "non-finite" in states["lr=100,seed=0"][1]
    assert states["lr=0.1,seed=1"][0] == "done"
    capsys.readouterr()
    assert main(["status", str(grid_dir)]) == 0
    status = capsys.readouterr().out
    assert "2 done, 2 failed" in status
    assert "NonFiniteError" in status and "Traceback" in status


def test_an_invalid_config_anywhere_fails_up_front(tmp_path, capsys):
    out = tmp_path / "runs_out"
    spec = {"study": "implicit-bias", "fixed": {"epochs": 5},
            "grid": {"potential": ["quadratic", "lp"], "p": [1.5, 0.5]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    code = main(["grid", str(path), "--tag", "x", "--out_dir", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "run " in err and "p=0.5" in err and "must be > 1" in err
    assert not out.exists() or not any(out.iterdir())


def test_bad_grid_flags_are_one_line_errors(tmp_path, capsys):
    spec = _spec(tmp_path)
    for args, key in ((["--executor", "ray"], "executor"), (["--jobs", "0"], "jobs"),
                      (["--bogus"], "--bogus")):
        assert main(["grid", str(spec), "--out_dir", str(tmp_path / "o"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and key in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.slow
def test_kill_9_then_resume_finishes_every_run_exactly_once(tmp_path):
    out = tmp_path / "runs_out"
    spec = _spec(tmp_path, epochs=1500, seeds=(0, 1, 2, 3), extra={"n_samples": 512})
    cmd = [sys.executable, "-m", "sweeplab", "grid", str(spec), "--tag", "k", "--jobs", "2",
           "--out_dir", str(out), "--executor", "local"]
    with started(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
        deadline = time.monotonic() + 120
        grid_dir = None
        while time.monotonic() < deadline:
            dirs = [p for p in out.glob("*_k") if p.is_dir()] if out.exists() else []
            if dirs:
                grid_dir = dirs[0]
                done = [p for p in grid_dir.iterdir()
                        if (p / "status.json").exists()
                        and json.loads((p / "status.json").read_text())["state"] == "done"]
                if len(done) >= 2:
                    break
            time.sleep(0.05)
    # leaving the block SIGKILLs the driver and its workers at once
    assert grid_dir is not None
    before = {p.name: json.loads((p / "status.json").read_text())
              for p in grid_dir.iterdir() if (p / "status.json").exists()}
    finished_before = {n: s["started"] for n, s in before.items() if s["state"] == "done"}
    assert 2 <= len(finished_before) < 8, "the kill must land mid-grid"

    resumed = run_group(cmd)
    assert resumed.returncode == 0, resumed.stderr
    rows = _master(grid_dir)
    assert len(rows) == 8 and len({r["run"] for r in rows}) == 8
    assert all(r["state"] == "done" for r in rows)
    for name, began in finished_before.items():  # finished runs were not run again
        status = json.loads((grid_dir / name / "status.json").read_text())
        assert status["started"] == began
    for r in rows:  # every run ran exactly once: one row per logged epoch, no duplicates
        epochs = [json.loads(x)["epoch"] for x in
                  (grid_dir / r["run"] / "metrics.jsonl").read_text().splitlines()]
        assert epochs == list(range(1501))


@pytest.mark.slow
def test_spec_grid_command_verbatim(tmp_path):
    import shutil

    shutil.copytree(REPO / "runs", tmp_path / "runs")
    proc = run_group(
        [sys.executable, "-m", "runs.scripts.run_grid", "--config",
         "runs/configs/synthetic_potentials.yaml", "--tag", "synth_bias"],
        timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    grid_dir = _grid_dir(tmp_path / "runs_out")
    rows = _master(grid_dir)
    assert len(rows) == 18 and all(r["state"] == "done" for r in rows)
    assert {(r["potential"], r["p"]) for r in rows} >= {("lp", "1.5"), ("lp", "3.0")}


def test_a_crashed_worker_fails_its_run_and_the_grid_goes_on(tmp_path, capsys):
    import toy_studies  # noqa: F401 - registers toy-crash here; workers import it themselves

    spec = {"study": "toy-crash", "grid": {"x": [1, 2, 3]},
            "zip": {"crash": [False, True]}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "runs_out"
    code = main(["grid", str(path), "--tag", "c", "--jobs", "2", "--out_dir", str(out),
                 "--executor", "local"])
    assert code == 1
    grid_dir = _grid_dir(out)
    rows = {r["run"]: r for r in _master(grid_dir)}
    assert len(rows) == 6
    crashed = [r for r in rows.values() if r["crash"] == "True"]
    healthy = [r for r in rows.values() if r["crash"] == "False"]
    assert all(r["state"] == "failed" and "worker process died" in r["error"] for r in crashed)
    # the healthy runs in flight beside a crash are re-run alone and finish
    assert all(r["state"] == "done" for r in healthy)
    for r in rows.values():
        status = json.loads((grid_dir / r["run"] / "status.json").read_text())
        assert status["state"] == r["state"]  # the directory says what master.csv says
    capsys.readouterr()
    assert main(["grid", "--resume", str(grid_dir), "--jobs", "2",
                 "--executor", "local"]) == 1  # crashes again
    assert "3 already done, 3 to run" in capsys.readouterr().out


def test_missing_dataset_files_fail_the_grid_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SWEEPLAB_DATA_DIR", raising=False)
    spec = {"study": "implicit-bias",
            "fixed": {"dataset": "mnist", "data_dir": str(tmp_path / "none")},
            "grid": {"seed": [0, 1]}}
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "runs_out"
    assert main(["grid", str(path), "--tag", "m", "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("sweeplab: error: run seed=0: dataset 'mnist'")
    assert not out.exists() or not any(out.iterdir())
