"""MLflow as a metric sink: one MLflow run per sweeplab run, written from a background thread.

Each sink has its own ``mlflow.MlflowClient`` (never the global fluent API, whose
"active run" would mix concurrent runs of one process). Logging costs the run almost
nothing: :meth:`MlflowSink.log` appends to a list, and a background thread creates the
MLflow run, logs the params and sends the buffered metrics with ``log_batch`` every
``flush_interval`` seconds (2 s), then the rest and the end state at close. A tracker
that stops answering therefore never holds up training: its error surfaces at the next
call, and :meth:`close` gives up when no request has finished for ``stall_timeout``
seconds. Only when MLflow falls ``MAX_PENDING_ROWS`` steps behind does a run wait for
it (memory stays bounded), and then only while MLflow keeps answering.

The MLflow run id is kept in ``<run_dir>/trackers.json``: a resumed sweeplab run
continues the same MLflow run, skipping the steps MLflow already has.

SQLite stores are shared by every worker of a grid. MLflow waits up to 20 s for a lock,
but SQLite answers "database is locked" at once when two writers would deadlock; every
write here is retried on that error with a growing, jittered pause.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sweeplab.core.experiment import to_jsonable
from sweeplab.errors import ConfigError
from sweeplab.track.config import MLFLOW_DEFAULT_URI, TrackingConfig
from sweeplab.track.trackers import (
    flatten,
    is_number,
    read_tracker_ids,
    scalar_metrics,
    write_tracker_id,
)

FLUSH_INTERVAL_S = 2.0
STALL_TIMEOUT_S = 30.0
MAX_PENDING_ROWS = 50_000
"""Logged steps the buffer may hold before the run waits for MLflow (about 50 MB)."""
LOCK_RETRY_S = 60.0
"""How long a write keeps retrying while SQLite says "database is locked"."""

PARAM_VALUE_MAX = 500
"""MLflow servers before 2.x reject param values over 500 characters; newer allow 6000."""
TAG_VALUE_MAX = 5000
KEY_MAX = 250
METRICS_PER_BATCH = 1000
PARAMS_PER_BATCH = 100

RUN_STATUS = {"done": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
"""Run state -> MLflow run status."""

T = TypeVar("T")


def is_locked_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's transient "database is locked" (or "table is locked")."""
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def retry_locked(fn: Callable[..., T], *args: Any, timeout: float = LOCK_RETRY_S,
                 **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, retried (tenacity) while it fails with "database is locked".

    Pauses are drawn at random below a bound that doubles from 50 ms to 1 s ("full
    jitter", so two writers that collided do not collide again); no pause runs past
    ``timeout`` seconds, after which the last error is raised as it was. Other errors
    are raised at once. tenacity comes with the ``track`` extra, as MLflow does.
    """
    import tenacity

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_locked_error),
        wait=tenacity.wait_random_exponential(multiplier=0.05, max=1.0),
        stop=tenacity.stop_before_delay(timeout), reraise=True)
    return retrying(fn, *args, **kwargs)


@contextlib.contextmanager
def quiet_loggers(*names: str, level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of the named loggers for a while (MLflow and alembic narrate
    their schema migrations at INFO on stderr)."""
    loggers = [logging.getLogger(name) for name in names]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(level, lg.level))
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, before):
            lg.setLevel(lvl)


def default_artifact_location(uri: str) -> str | None:
    """Artifacts of a local SQLite store go in ``mlartifacts/`` beside the DB file.

    MLflow's own default is ``./mlruns`` relative to whatever folder a worker runs in.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    db = Path(uri[len(prefix):].split("?", 1)[0])
    if not db.is_absolute():
        db = db.resolve()
    return (db.parent / "mlartifacts").as_uri()


def _client(uri: str) -> Any:
    if uri == MLFLOW_DEFAULT_URI:
        raise ConfigError("mlflow_uri", uri, "resolve it with prepare_tracking first")
    from mlflow import MlflowClient

    with quiet_loggers("mlflow", "alembic"):
        return MlflowClient(uri)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    """The id of experiment ``name``, created when missing (a parallel creator wins)."""
    with quiet_loggers("mlflow", "alembic"):
        found = retry_locked(client.get_experiment_by_name, name)
        if found is not None:
            return found.experiment_id
        try:
            return retry_locked(client.create_experiment, name,
                                artifact_location=artifact_location)
        except Exception:
            found = retry_locked(client.get_experiment_by_name, name)
            if found is None:
                raise
            return found.experiment_id


def ensure_experiment(uri: str, name: str) -> str:
    """Create the MLflow experiment ``name`` at ``uri`` unless it exists; its id.

    Run once by :func:`~sweeplab.track.config.prepare_tracking` in the parent, which
    also runs the SQLite schema creation/migration once, before any worker starts.
    """
    return _experiment_id(_client(uri), name, default_artifact_location(uri))


def _param_value(value: Any) -> str:
    if isinstance(value, (list, tuple, set, dict)):
        text = json.dumps(to_jsonable(value))
    else:
        text = str(to_jsonable(value))
    return text if len(text) <= PARAM_VALUE_MAX else text[: PARAM_VALUE_MAX - 3] + "..."


def _tag_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value))
    return text if len(text) <= TAG_VALUE_MAX else text[: TAG_VALUE_MAX - 3] + "..."


class MlflowSink:
    """Logs a run's params, metrics, final metrics and end state to an MLflow run."""

    name = "mlflow"

    def __init__(
        self,
        tracking: TrackingConfig,
        *,
        run_dir: str | Path,
        run_name: str,
        study: str,
        config: Mapping[str, Any],
        flush_interval: float = FLUSH_INTERVAL_S,
        stall_timeout: float = STALL_TIMEOUT_S,
    ):
        import mlflow  # noqa: F401 - fail here, in the caller's thread, when it is missing

        if tracking.mlflow_uri == MLFLOW_DEFAULT_URI:
            raise ConfigError("mlflow_uri", tracking.mlflow_uri,
                              "resolve it with prepare_tracking first")
        self.uri = str(tracking.mlflow_uri)
        self.run_id: str | None = None
        self._tracking = tracking
        self._run_dir = Path(run_dir)
        self._run_name = run_name
        self._study = study
        self._config = dict(config)
        self._flush_interval = flush_interval
        self._stall_timeout = stall_timeout
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, dict[str, float]]] = []
        self._final: dict[str, Any] = {}
        self._latest: dict[str, float] = {}  # last value sent per key (background thread)
        self._last_step = -1
        self._skip_through = -1
        self._status = RUN_STATUS["done"]
        self._stop = threading.Event()
        self._done = threading.Event()
        self._abandoned = False
        self._error: BaseException | None = None
        self._progress = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=f"sweeplab-mlflow-{run_name}",
                                        daemon=True)
        self._thread.start()

    # -- the run's thread: only appends, never waits (except at close) --

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Buffer ``metrics`` at ``step``; the background thread sends them."""
        self._raise_if_failed()
        values = scalar_metrics(metrics)
        if values:
            step = int(step)
            with self._lock:
                self._pending.append((step, int(time.time() * 1000), values))
                self._last_step = max(self._last_step, step)
            if len(self._pending) > MAX_PENDING_ROWS:
                self._wait_for_room()

    def _wait_for_room(self) -> None:
        """MLflow is behind by ``MAX_PENDING_ROWS`` steps: hold the run until it has sent
        half of them, rather than let the buffer grow without bound; give up (raise
        :class:`TimeoutError`) when MLflow finishes no request for ``stall_timeout`` s."""
        while len(self._pending) > MAX_PENDING_ROWS // 2 and not self._done.is_set():
            if time.monotonic() - self._progress > self._stall_timeout:
                self._abandoned = True
                raise TimeoutError(f"no answer from {self.uri} for {self._stall_timeout:.0f} s "
                                   f"with {len(self._pending)} steps waiting")
            time.sleep(0.01)
        self._raise_if_failed()

    def summary(self, final: Mapping[str, Any]) -> None:
        """Keep the final metrics; sent at close as metrics (numbers) and tags (the rest)."""
        self._raise_if_failed()
        self._final.update(flatten(final))

    def close(self, state: str = "done") -> None:
        """Send what is left, end the MLflow run as ``state``, and wait for it.

        Raises the background thread's error, or :class:`TimeoutError` when MLflow
        finished no request for ``stall_timeout`` seconds.
        """
        self._raise_if_failed()
        self._status = RUN_STATUS[state]
        self._progress = time.monotonic()
        self._stop.set()
        while not self._done.wait(0.05):
            if time.monotonic() - self._progress > self._stall_timeout:
                self._abandoned = True
                raise TimeoutError(f"no answer from {self.uri} for {self._stall_timeout:.0f} s;"
                                   " the metrics not sent are in metrics.jsonl")
        self._raise_if_failed()

    def abandon(self) -> None:
        """Stop the background thread after its current request, without ending the run."""
        self._abandoned = True
        self._stop.set()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # -- the background thread --

    def _work(self) -> None:
        try:
            self._start()
            while not self._abandoned:
                stopping = self._stop.wait(self._flush_interval)
                if self._abandoned:
                    return
                self._flush()
                if stopping:
                    self._finish()
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the run's thread
            self._error = exc
        finally:
            self._done.set()

    def _start(self) -> None:
        """Create the MLflow run (or find the one to resume) and log the params."""
        self._client = _client(self.uri)
        self._progress = time.monotonic()
        saved = read_tracker_ids(self._run_dir).get("mlflow", {})
        run = None
        if saved.get("tracking_uri") == self.uri and saved.get("run_id"):
            run = self._existing_run(saved["run_id"])
        if run is not None:
            self.run_id = run.info.run_id
            steps = [m.step for m in getattr(run.data, "_metric_objs", ())]
            self._skip_through = max(steps, default=-1)
            retry_locked(self._client.update_run, self.run_id, status="RUNNING")
        else:
            experiment = self._tracking.mlflow_experiment or self._study
            experiment_id = _experiment_id(self._client, experiment,
                                           default_artifact_location(self.uri))
            tags = {"study": self._study, "run_dir": str(self._run_dir.resolve())}
            if self._tracking.group:
                tags["group"] = self._tracking.group
            run = retry_locked(self._client.create_run, experiment_id,
                               run_name=self._run_name, tags=tags)
            self.run_id = run.info.run_id
            write_tracker_id(self._run_dir, "mlflow", {"run_id": self.run_id,
                                                      "tracking_uri": self.uri,
                                                      "experiment_id": experiment_id})
        self._progress = time.monotonic()
        self._log_params()

    def _existing_run(self, run_id: str) -> Any:
        """The saved run, or ``None`` when this store does not have it (any more)."""
        from mlflow.exceptions import MlflowException

        try:
            run = retry_locked(self._client.get_run, run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return None if run.info.lifecycle_stage == "deleted" else run

    def _log_params(self) -> None:
        from mlflow.entities import Param

        params = [Param(key[:KEY_MAX], _param_value(value))
                  for key, value in flatten(self._config).items()]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            retry_locked(self._client.log_batch, self.run_id,
                         params=params[i:i + PARAMS_PER_BATCH])
            self._progress = time.monotonic()

    def _flush(self) -> None:
        """Send the buffered metrics, about 1000 per request, until the buffer is empty."""
        from mlflow.entities import Metric

        while not self._abandoned:
            with self._lock:
                count = taken = 0
                while taken < len(self._pending) and count < METRICS_PER_BATCH:
                    count += len(self._pending[taken][2])
                    taken += 1
                rows = self._pending[:taken]
                del self._pending[:taken]
            if not rows:
                return
            for _, _, values in rows:
                self._latest.update(values)
            self._send([Metric(key[:KEY_MAX], value, ts, step)
                        for step, ts, values in rows if step > self._skip_through
                        for key, value in values.items()])

    def _send(self, metrics: list[Any]) -> None:
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            retry_locked(self._client.log_batch, self.run_id,
                         metrics=metrics[i:i + METRICS_PER_BATCH])
            self._progress = time.monotonic()

    def _finish(self) -> None:
        """Final metrics (numbers) and tags (the rest), then the run's end status."""
        from mlflow.entities import Metric, RunTag

        if self._final:
            now = int(time.time() * 1000)
            step = max(self._last_step, self._skip_through, 0)
            # a final value equal to the key's last logged one is already there
            self._send([Metric(k[:KEY_MAX], float(v), now, step)
                        for k, v in self._final.items()
                        if is_number(v) and self._latest.get(k) != float(v)])
            tags = [RunTag(k[:KEY_MAX], _tag_value(v))
                    for k, v in self._final.items() if not is_number(v)]
            for i in range(0, len(tags), PARAMS_PER_BATCH):
                retry_locked(self._client.log_batch, self.run_id,
                             tags=tags[i:i + PARAMS_PER_BATCH])
                self._progress = time.monotonic()
        retry_locked(self._client.set_terminated, self.run_id, self._status)
        self._progress = time.monotonic()
