"""A tracker that cannot start, or dies mid-run, warns once and leaves the run alone."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeplab.track.config import TrackingConfig, prepare_tracking
from sweeplab.track.local import LocalMetricsWriter, read_metrics
from sweeplab.track.mlflow_sink import MlflowSink
from sweeplab.track.trackers import SafeTrackerSink, make_tracker_sinks

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy:DeprecationWarning")  # inside MLflow's store


def free_port() -> int:
    """A TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(steps: range) -> list[dict[str, float]]:
    return [{"loss": 1.0 / (s + 1), "acc": s / 100} for s in steps]


class Run:
    """A run's metric path as RunContext drives it: the local writer, then the trackers."""

    def __init__(self, run_dir: Path, sinks: list[SafeTrackerSink]):
        self.run_dir = run_dir
        self.local = LocalMetricsWriter(run_dir)
        self.sinks = sinks
        self.step = 0

    def log(self, n: int) -> None:
        for metrics in rows(range(self.step, self.step + n)):
            self.local.log(self.step, metrics)
            for sink in self.sinks:
                sink.log(self.step, metrics)
            self.step += 1

    def log_until(self, done: Callable[[], bool], timeout: float = 30.0) -> None:
        """Keep logging a step every 20 ms until ``done()`` (or fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "condition not reached"
            self.log(1)
            time.sleep(0.02)

    def finish(self, state: str = "done") -> None:
        for sink in self.sinks:
            sink.summary({"final_loss": 0.5})
            sink.close(state)
        self.local.close()

    def assert_local_files_complete(self) -> None:
        expected = [{"epoch": s, **m} for s, m in enumerate(rows(range(self.step)))]
        assert read_metrics(self.run_dir / "metrics.jsonl") == expected


def assert_one_failure_warning(warnings: list[str], tracker: str, *fragments: str) -> None:
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{tracker} tracking failed (")
    assert warnings[0].endswith("the run goes on with its local files")
    for fragment in fragments:
        assert fragment in warnings[0]


@pytest.fixture
def fast_failing_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's HTTP client gives up at once instead of retrying for minutes."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


def test_mlflow_server_not_listening_warns_once_and_touches_no_file(tmp_path, fast_failing_http):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    warnings: list[str] = []
    tracking = TrackingConfig(mlflow_uri=f"http://127.0.0.1:{free_port()}",
                              mlflow_experiment="e")
    run = Run(run_dir, make_tracker_sinks(tracking, run_dir=run_dir, run_name="r", study="s",
                                          config={"lr": 0.1}, warn=warnings.append))
    run.log(5)
    run.log_until(lambda: not run.sinks[0].active)
    run.log(5)  # after the failure: no-ops, no new warning
    run.finish()
    assert_one_failure_warning(warnings, "mlflow", "MlflowException", "127.0.0.1")
    run.assert_local_files_complete()
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.csv", "metrics.jsonl"]


def test_unwritable_wandb_dir_warns_once_and_touches_no_file(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    warnings: list[str] = []
    tracking = TrackingConfig(wandb_project="p", wandb_mode="offline",
                              wandb_dir=str(blocker / "wandb"))
    sinks = make_tracker_sinks(tracking, run_dir=run_dir, run_name="r", study="s",
                               config={}, warn=warnings.append)
    assert [s.active for s in sinks] == [False]
    run = Run(run_dir, sinks)
    run.log(10)
    run.finish("failed")
    assert_one_failure_warning(warnings, "wandb", "a-file")
    run.assert_local_files_complete()
    assert sorted(p.name for p in run_dir.iterdir()) == ["metrics.csv", "metrics.jsonl"]


def _landed_steps(uri: str, run_id: str | None) -> int:
    if run_id is None:
        return 0
    return len(MlflowClient(uri).get_metric_history(run_id, "loss"))


def test_sqlite_store_broken_mid_run_warns_once_and_run_goes_on(runs_dir):
    tracking = prepare_tracking(TrackingConfig(mlflow_uri="default"), runs_dir, "e",
                                pytest.fail)
    run_dir = runs_dir / "run"
    run_dir.mkdir()
    warnings: list[str] = []
    inner: list[MlflowSink] = []

    def factory() -> MlflowSink:
        inner.append(MlflowSink(tracking, run_dir=run_dir, run_name="r", study="s",
                                config={}, flush_interval=0.05))
        return inner[0]

    run = Run(run_dir, [SafeTrackerSink("mlflow", factory, warnings.append)])
    run.log(10)
    run.log_until(lambda: _landed_steps(tracking.mlflow_uri, inner[0].run_id) >= 10)
    db = sqlite3.connect(tracking.mlflow_uri.removeprefix("sqlite:///"))
    db.execute("DROP TABLE metrics")  # the store breaks under the running run
    db.commit()
    db.close()
    run.log_until(lambda: not run.sinks[0].active)
    run.log(5)
    run.finish()
    assert_one_failure_warning(warnings, "mlflow", "no such table: metrics")
    run.assert_local_files_complete()


def _start_mlflow_server(db: Path, port: int, log: Path) -> subprocess.Popen:
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(mlflow_cli), "server", "--backend-store-uri", f"sqlite:///{db}",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    _stop(proc)
    pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the worker processes it started (its own process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_mlflow_server_stopped_mid_run_warns_once_and_run_goes_on(
        tmp_path, runs_dir, fast_failing_http):
    port = free_port()
    server = _start_mlflow_server(runs_dir / "mlflow.db", port, tmp_path / "server.log")
    try:
        warnings: list[str] = []
        tracking = prepare_tracking(TrackingConfig(mlflow_uri=f"http://127.0.0.1:{port}"),
                                    runs_dir, "e", warnings.append)
        assert warnings == [] and tracking.mlflow_enabled
        run_dir = runs_dir / "run"
        run_dir.mkdir()
        inner: list[MlflowSink] = []

        def factory() -> MlflowSink:
            inner.append(MlflowSink(tracking, run_dir=run_dir, run_name="r", study="s",
                                    config={"lr": 0.1}, flush_interval=0.05))
            return inner[0]

        run = Run(run_dir, [SafeTrackerSink("mlflow", factory, warnings.append)])
        run.log(10)
        run.log_until(lambda: _landed_steps(tracking.mlflow_uri, inner[0].run_id) >= 10)
    finally:
        _stop(server)
    run.log_until(lambda: not run.sinks[0].active)
    run.log(5)
    run.finish()
    assert_one_failure_warning(warnings, "mlflow", "MlflowException", f"127.0.0.1:{port}")
    run.assert_local_files_complete()


def test_failure_in_close_is_reported_once_and_close_stays_idempotent(tmp_path,
                                                                      fast_failing_http):
    warnings: list[str] = []
    tracking = TrackingConfig(mlflow_uri=f"http://127.0.0.1:{free_port()}",
                              mlflow_experiment="e")
    [sink] = make_tracker_sinks(tracking, run_dir=tmp_path, run_name="r", study="s",
                                config={}, warn=warnings.append)
    sink.close("done")  # the background start fails; close reports it
    sink.close("done")
    sink.log(0, {"loss": 1.0})
    assert len(warnings) == 1 and not sink.active


def test_a_server_that_never_answers_holds_the_run_end_only_for_the_stall_timeout(
        tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    with socket.socket() as silent:  # accepts connections, never answers a request
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        tracking = TrackingConfig(mlflow_uri=f"http://127.0.0.1:{silent.getsockname()[1]}",
                                  mlflow_experiment="e")
        warnings: list[str] = []
        run = Run(tmp_path, [SafeTrackerSink("mlflow", lambda: MlflowSink(
            tracking, run_dir=tmp_path, run_name="r", study="s", config={},
            stall_timeout=0.5), warnings.append)])
        run.log(20)
        run.finish()
    assert_one_failure_warning(warnings, "mlflow", "TimeoutError", "no answer from")
    run.assert_local_files_complete()
