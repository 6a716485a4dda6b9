"""wandb sink, offline: what the run's transaction log holds is exactly what was logged."""

from __future__ import annotations

import json
from pathlib import Path

from wandb_records import offline_runs, read_offline_run

from sweeplab.track.config import TrackingConfig
from sweeplab.track.trackers import make_tracker_sinks, read_tracker_ids

CONFIG = {"lr": 0.05, "L": 3, "potential": "lp", "data": {"n_samples": 64}}


def _sinks(tracking: TrackingConfig, run_dir: Path, warnings: list[str], name: str = "L=3,seed=0"):
    run_dir.mkdir(parents=True, exist_ok=True)
    return make_tracker_sinks(tracking, run_dir=run_dir, run_name=name, study="implicit-bias",
                              config=CONFIG, warn=warnings.append)


def test_offline_run_holds_exact_steps_values_config_summary_and_identity(tmp_path):
    tracking = TrackingConfig(wandb_project="sweeplab-tests", wandb_mode="offline",
                              wandb_dir=str(tmp_path / "wb"), group="grid-a")
    warnings: list[str] = []
    [sink] = _sinks(tracking, tmp_path / "run", warnings)
    rows = {0: {"loss": 0.69, "acc": 0.5}, 1: {"loss": 0.25, "acc": 0.75},
            5: {"loss": 0.125, "acc": 1.0, "note": "not a number", "missing": None}}
    for step, metrics in rows.items():
        sink.log(step, metrics)
    sink.log(5, {"margin": 0.3})  # same step again: merged into step 5
    sink.log(3, {"loss": 9.0})  # an earlier step: skipped, wandb only goes forward
    sink.summary({"final_loss": 0.125, "angle_svm": 1.5, "status": "converged"})
    sink.close("done")
    assert warnings == []
    assert not sink.active

    run_id = read_tracker_ids(tmp_path / "run")["wandb"]["run_id"]
    [wandb_file] = offline_runs(tmp_path / "wb", run_id)
    run = read_offline_run(wandb_file)
    assert (run.run_id, run.project, run.name, run.group) == (
        run_id, "sweeplab-tests", "L=3,seed=0", "grid-a")
    assert {k: run.config[k] for k in ("lr", "L", "potential", "data", "study")} == {
        **CONFIG, "study": "implicit-bias"}
    history = [{k: v for k, v in row.items() if not k.startswith("_") or k == "_step"}
               for row in run.history]
    assert history == [
        {"_step": 0, "loss": 0.69, "acc": 0.5},
        {"_step": 1, "loss": 0.25, "acc": 0.75},
        {"_step": 5, "loss": 0.125, "acc": 1.0, "margin": 0.3},
    ]
    assert {k: run.summary[k] for k in ("final_loss", "angle_svm", "status")} == {
        "final_loss": 0.125, "angle_svm": 1.5, "status": "converged"}
    assert run.exit_code == 0


def test_failed_and_interrupted_runs_get_their_exit_codes(tmp_path):
    tracking = TrackingConfig(wandb_project="p", wandb_mode="offline",
                              wandb_dir=str(tmp_path / "wb"))
    codes = {}
    for state in ("failed", "interrupted"):
        warnings: list[str] = []
        [sink] = _sinks(tracking, tmp_path / state, warnings, name=state)
        sink.log(0, {"loss": 1.0})
        sink.close(state)
        assert warnings == []
        run_id = read_tracker_ids(tmp_path / state)["wandb"]["run_id"]
        codes[state] = read_offline_run(offline_runs(tmp_path / "wb", run_id)[0]).exit_code
    assert codes == {"failed": 1, "interrupted": 255}


def test_resumed_run_reuses_the_wandb_run_id(tmp_path):
    tracking = TrackingConfig(wandb_project="p", wandb_mode="offline",
                              wandb_dir=str(tmp_path / "wb"))
    run_dir = tmp_path / "run"
    warnings: list[str] = []
    [first] = _sinks(tracking, run_dir, warnings)
    first.log(0, {"loss": 1.0})
    first.log(1, {"loss": 0.5})
    first.close("interrupted")
    saved = json.loads((run_dir / "trackers.json").read_text())["wandb"]

    [second] = _sinks(tracking, run_dir, warnings)
    second.log(2, {"loss": 0.25})
    second.close("done")
    assert warnings == []
    assert json.loads((run_dir / "trackers.json").read_text())["wandb"] == saved
    files = offline_runs(tmp_path / "wb", saved["run_id"])
    runs = [read_offline_run(f) for f in files]
    assert {r.run_id for r in runs} == {saved["run_id"]}
    steps = sorted(row["_step"] for r in runs for row in r.history)
    assert steps == [0, 1, 2]
    assert sorted(r.exit_code for r in runs) == [0, 255]


def test_a_new_project_starts_a_new_wandb_run(tmp_path):
    run_dir = tmp_path / "run"
    warnings: list[str] = []
    ids = []
    for project in ("first", "second"):
        tracking = TrackingConfig(wandb_project=project, wandb_mode="offline",
                                  wandb_dir=str(tmp_path / "wb"))
        [sink] = _sinks(tracking, run_dir, warnings)
        sink.close()
        ids.append(read_tracker_ids(run_dir)["wandb"]["run_id"])
    assert warnings == []
    assert ids[0] != ids[1]


def test_wandb_dir_defaults_to_WANDB_DIR(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "from-env"))
    warnings: list[str] = []
    [sink] = _sinks(TrackingConfig(wandb_project="p"), tmp_path / "run", warnings)
    sink.log(0, {"x": 1.0})
    sink.close()
    run_id = read_tracker_ids(tmp_path / "run")["wandb"]["run_id"]
    assert warnings == []
    assert len(offline_runs(tmp_path / "from-env", run_id)) == 1
