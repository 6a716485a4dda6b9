"""MLflow sink on a real SQLite store, read back through MLflow's own search API."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeplab.track import mlflow_sink
from sweeplab.track.config import TrackingConfig, prepare_tracking
from sweeplab.track.mlflow_sink import MlflowSink, retry_locked
from sweeplab.track.trackers import SafeTrackerSink, make_tracker_sinks, read_tracker_ids

CONFIG = {"lr": 0.05, "L": 3, "potential": "lp", "data": {"n_samples": 64},
          "digits": [3, 8], "note": "x" * 700}


pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy:DeprecationWarning")  # inside MLflow's store


def _prepared(runs_dir: Path, experiment: str = "grid-a") -> TrackingConfig:
    warnings: list[str] = []
    tracking = prepare_tracking(TrackingConfig(mlflow_uri="default", group="grid-a"),
                                runs_dir, experiment, warnings.append)
    assert warnings == []
    return tracking


def _runs(tracking: TrackingConfig):
    client = MlflowClient(tracking.mlflow_uri)
    experiment = client.get_experiment_by_name(tracking.mlflow_experiment)
    return client, client.search_runs([experiment.experiment_id])


def test_metrics_params_tags_summary_and_status_land_in_sqlite(runs_dir):
    tracking = _prepared(runs_dir)
    run_dir = runs_dir / "L=3,seed=0"
    run_dir.mkdir(parents=True)
    warnings: list[str] = []
    [sink] = make_tracker_sinks(tracking, run_dir=run_dir, run_name="L=3,seed=0",
                                study="implicit-bias", config=CONFIG, warn=warnings.append)
    for step in range(50):
        sink.log(step, {"loss": 1.0 / (step + 1), "acc": step / 50, "label": "text"})
    sink.summary({"final_loss": 0.02, "status_note": "converged", "angles": {"svm": 1.5},
                  "loss": 1.0 / 50, "acc": 1.0})  # loss as last logged; acc is new
    sink.close("done")
    assert warnings == []

    client, runs = _runs(tracking)
    [run] = runs
    assert run.info.run_id == read_tracker_ids(run_dir)["mlflow"]["run_id"]
    assert run.info.run_name == "L=3,seed=0"
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(s, 1.0 / (s + 1)) for s in range(50)]
    acc = client.get_metric_history(run.info.run_id, "acc")
    assert sorted((m.step, m.value) for m in acc) == sorted(
        [(s, s / 50) for s in range(50)] + [(49, 1.0)])
    assert run.data.metrics["acc"] == 1.0  # the final value is the latest
    assert "label" not in run.data.metrics
    assert run.data.metrics["final_loss"] == 0.02
    assert run.data.metrics["angles.svm"] == 1.5
    assert run.data.tags["status_note"] == "converged"
    assert {k: run.data.tags[k] for k in ("study", "group", "run_dir")} == {
        "study": "implicit-bias", "group": "grid-a", "run_dir": str(run_dir.resolve())}
    params = run.data.params
    assert {k: params[k] for k in ("lr", "L", "potential", "data.n_samples", "digits")} == {
        "lr": "0.05", "L": "3", "potential": "lp", "data.n_samples": "64", "digits": "[3, 8]"}
    assert len(params["note"]) == 500 and params["note"].endswith("...")


@pytest.mark.parametrize(("state", "status"), [("failed", "FAILED"), ("interrupted", "KILLED")])
def test_end_state_becomes_mlflow_status(tmp_path, runs_dir, state, status):
    tracking = _prepared(runs_dir)
    [sink] = make_tracker_sinks(tracking, run_dir=tmp_path, run_name="r", study="s",
                                config={}, warn=pytest.fail)
    sink.log(0, {"loss": 1.0})
    sink.close(state)
    _, [run] = _runs(tracking)
    assert run.info.status == status


def test_resumed_run_continues_the_same_mlflow_run_without_duplicate_steps(tmp_path, runs_dir):
    tracking = _prepared(runs_dir)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    kwargs = dict(run_dir=run_dir, run_name="r", study="s", config={"lr": 0.1}, warn=pytest.fail)
    [first] = make_tracker_sinks(tracking, **kwargs)
    for step in range(5):
        first.log(step, {"loss": float(step)})
    first.close("interrupted")
    [second] = make_tracker_sinks(tracking, **kwargs)
    for step in range(3, 8):  # resumed from a checkpoint at epoch 3: 3 and 4 are re-logged
        second.log(step, {"loss": float(step)})
    second.close("done")

    client, [run] = _runs(tracking)
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.step for m in history) == list(range(8))


def test_a_run_faster_than_mlflow_waits_for_it_instead_of_buffering_without_bound(
        tmp_path, runs_dir, monkeypatch):
    monkeypatch.setattr(mlflow_sink, "MAX_PENDING_ROWS", 40)
    tracking = _prepared(runs_dir)
    sink = MlflowSink(tracking, run_dir=tmp_path, run_name="r", study="s", config={},
                      flush_interval=0.05)
    most = 0
    for step in range(600):
        sink.log(step, {f"m{k}": float(step) for k in range(10)})
        most = max(most, len(sink._pending))
    sink.close("done")
    assert most <= 41
    client, [run] = _runs(tracking)
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "m9")) == list(
        range(600))


def _log_from_process(tracking: TrackingConfig, run_dir: str, steps: int) -> list[str]:
    warnings: list[str] = []
    sink = SafeTrackerSink("mlflow", lambda: MlflowSink(
        tracking, run_dir=run_dir, run_name=Path(run_dir).name, study="s",
        config={"i": Path(run_dir).name}, flush_interval=0.02), warnings.append)
    for step in range(steps):
        sink.log(step, {f"m{k}": step + k / 10 for k in range(10)})
        if step % 20 == 0:
            time.sleep(0.01)
    sink.close("done")
    return warnings


def test_two_processes_write_the_same_sqlite_db_at_once(tmp_path, runs_dir):
    tracking = _prepared(runs_dir)
    dirs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        dirs.append(str(tmp_path / name))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = [pool.apply_async(_log_from_process, (tracking, d, 200)) for d in dirs]
        warnings = [r.get(timeout=120) for r in results]
    assert warnings == [[], []]
    client, runs = _runs(tracking)
    assert sorted(r.info.run_name for r in runs) == ["a", "b"]
    for run in runs:
        assert run.info.status == "FINISHED"
        for k in (0, 9):
            history = client.get_metric_history(run.info.run_id, f"m{k}")
            assert sorted((m.step, m.value) for m in history) == [
                (s, s + k / 10) for s in range(200)]


def test_a_write_waits_out_a_locked_database(tmp_path):
    db = tmp_path / "locked.db"
    sqlite3.connect(db).execute("CREATE TABLE t (x INTEGER)").connection.commit()
    holder = sqlite3.connect(db, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.3, holder.commit)
    release.start()

    def insert() -> None:
        conn = sqlite3.connect(db, timeout=0)  # no busy wait: "database is locked" at once
        try:
            conn.execute("INSERT INTO t VALUES (1)")
            conn.commit()
        finally:
            conn.close()

    retry_locked(insert, timeout=10)
    release.join()
    holder.close()
    assert sqlite3.connect(db).execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_other_errors_are_not_retried(tmp_path):
    calls = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: metrics")

    with pytest.raises(sqlite3.OperationalError):
        retry_locked(broken, timeout=10)
    assert calls == [1]


def test_a_lock_that_outlasts_the_timeout_raises_the_locked_error():
    calls = []

    def locked() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        retry_locked(locked, timeout=0.5)
    assert len(calls) > 1  # retried, then given up: the error as raised, not a wrapper
