"""Trackers end to end through the CLI: a grid's ``tracking:`` section and run flags.

Real worker processes log to a real MLflow SQLite file and to wandb in offline mode;
both are read back (MLflow's search API, the offline run's transaction log) and checked
against the runs' own metrics.jsonl and final.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from wandb_records import offline_runs, read_offline_run

from sweeplab.cli.main import main
from sweeplab.track.local import read_metrics


def _grid_spec(tmp_path: Path, tracking: dict) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "implicit-bias",
        "name": "tracked",
        "tracking": tracking,
        "fixed": {"epochs": 30, "plots": False, "n_samples": 64, "log_interval": 10},
        "grid": {"seed": [0, 1]},
    }))
    return spec


def test_grid_tracking_section_logs_every_run_to_mlflow(tmp_path, capsys):
    from mlflow import MlflowClient

    out = tmp_path / "runs_out"
    spec = _grid_spec(tmp_path, {"mlflow_uri": "default"})
    assert main(["grid", str(spec), "--tag", "t", "--jobs", "2", "--out_dir", str(out),
                 "--executor", "local"]) == 0  # worker processes, not the driver
    client = MlflowClient(f"sqlite:///{(out / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("tracked")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"seed=0", "seed=1"}
    grid_dir = next(out.glob("*_t"))
    for name, run in runs.items():
        assert run.info.status == "FINISHED"
        assert run.data.params["seed"] == name[-1] and run.data.tags["group"] == grid_dir.name
        rows = read_metrics(grid_dir / name / "metrics.jsonl")
        history = client.get_metric_history(run.info.run_id, "angle_svm")
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r["angle_svm"])
                                                        for r in rows]
        final = json.loads((grid_dir / name / "final.json").read_text())
        assert run.data.metrics["test_acc" if "test_acc" in final else "loss"] == pytest.approx(
            final["test_acc" if "test_acc" in final else "loss"])


def test_run_flags_log_to_wandb_offline_and_resume_keeps_the_run(tmp_path, capsys):
    out = tmp_path / "runs_out"
    args = ["run", "implicit-bias", "--epochs", "20", "--plots", "false", "--n_samples", "64",
            "--log_interval", "5", "--out_dir", str(out), "--wandb-project", "proj",
            "--wandb-mode", "offline", "-q"]
    assert main(args) == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    ids = json.loads((run_dir / "trackers.json").read_text())
    (wandb_file,) = offline_runs(tmp_path, ids["wandb"]["run_id"])
    offline = read_offline_run(wandb_file)
    assert (offline.project, offline.name) == ("proj", run_dir.name)
    assert offline.config["lr"] == 0.1 and offline.config["study"] == "implicit-bias"
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [h["_step"] for h in offline.history] == [r["epoch"] for r in rows] == [0, 5, 10,
                                                                                   15, 20]
    assert [h["loss"] for h in offline.history] == pytest.approx([r["loss"] for r in rows])
    final = json.loads((run_dir / "final.json").read_text())
    assert offline.summary["angle_svm"] == pytest.approx(final["angle_svm"])
    assert offline.exit_code == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["cli"]["tracking"]["wandb_project"] == "proj"


def test_bad_tracker_values_are_one_line_errors_and_leave_nothing(tmp_path, capsys):
    out = tmp_path / "runs_out"
    code = main(["run", "implicit-bias", "--epochs", "5", "--out_dir", str(out),
                 "--wandb-project", "p", "--wandb-mode", "sometimes"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "wandb_mode" in err and "online, offline, disabled" in err
    assert not any(out.iterdir()) if out.exists() else True
    spec = _grid_spec(tmp_path, {"mlflow_url": "default"})
    assert main(["grid", str(spec), "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert ("invalid tracking.mlflow_url=default: unknown key (did you mean mlflow_uri?); "
            "allowed keys: wandb_project" in err)
