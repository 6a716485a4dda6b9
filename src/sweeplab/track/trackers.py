"""Experiment trackers as metric sinks of one run, and the guard that keeps them harmless.

A tracker is optional and remote; the run's local files are the source of truth. So
every tracker sink is wrapped in :class:`SafeTrackerSink`: the first exception it
raises (while starting, logging, summarising or closing) is reported once through
``warn`` and switches that tracker off for the rest of the run. A tracker never raises
into a run and never holds it up for long.

``<run_dir>/trackers.json`` keeps each tracker's run id, so a resumed run continues the
same wandb run and the same MLflow run instead of starting new ones.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from sweeplab.core.experiment import save_json
from sweeplab.track.config import TrackingConfig, describe_error

RUN_STATES = ("done", "failed", "interrupted")
"""How a run ended, as :meth:`TrackerSink.close` takes it."""

TRACKERS_FILE = "trackers.json"


class TrackerSink(Protocol):
    """A metric sink backed by an experiment tracker (wandb, MLflow)."""

    name: str

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar ``metrics`` at ``step`` (the run's epoch)."""

    def summary(self, final: Mapping[str, Any]) -> None:
        """Record the run's final metrics (``final.json``)."""

    def close(self, state: str = "done") -> None:
        """End the tracker's run as ``state`` (one of :data:`RUN_STATES`)."""


class SafeTrackerSink:
    """Runs a tracker sink so that it can fail without touching the run.

    ``factory`` builds the real sink; any exception there or in a later call is caught,
    reported once as ``"<name> tracking failed (<error>); the run goes on with its local
    files"``, and turns every later call into a no-op. ``KeyboardInterrupt`` and other
    non-``Exception`` signals are not caught: they belong to the run.
    """

    def __init__(self, name: str, factory: Callable[[], TrackerSink],
                 warn: Callable[[str], None]):
        self.name = name
        self.error: str | None = None
        self._warn = warn
        self._sink: TrackerSink | None = None
        try:
            self._sink = factory()
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop a run
            self._fail(exc)

    @property
    def active(self) -> bool:
        """Whether the tracker still receives metrics (no failure so far, not closed)."""
        return self._sink is not None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Forward to the tracker; after a failure, do nothing."""
        if self._sink is None:
            return
        try:
            self._sink.log(step, metrics)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def summary(self, final: Mapping[str, Any]) -> None:
        """Forward the final metrics to the tracker; after a failure, do nothing."""
        if self._sink is None:
            return
        try:
            self._sink.summary(final)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def close(self, state: str = "done") -> None:
        """End the tracker's run as ``state``; idempotent, never raises.

        An unknown ``state`` is recorded as ``"failed"`` (with a warning): a run that
        ended in a way nobody named did not end well.
        """
        sink, self._sink = self._sink, None
        if sink is None:
            return
        if state not in RUN_STATES:
            self._warn(f"{self.name}: unknown run state {state!r} (known: "
                       f"{', '.join(RUN_STATES)}); recorded as failed")
            state = "failed"
        try:
            sink.close(state)
        except Exception as exc:  # noqa: BLE001
            self._sink = sink
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        sink, self._sink = self._sink, None
        self.error = describe_error(exc)
        self._warn(f"{self.name} tracking failed ({self.error}); "
                   "the run goes on with its local files")
        abandon = getattr(sink, "abandon", None)
        if abandon is not None:
            try:
                abandon()
            except Exception:  # noqa: BLE001 - already reported; nothing more to say
                pass


def make_tracker_sinks(
    tracking: TrackingConfig,
    *,
    run_dir: str | Path,
    run_name: str,
    study: str,
    config: dict[str, Any],
    warn: Callable[[str], None],
) -> list[SafeTrackerSink]:
    """The enabled trackers of one run, each behind a :class:`SafeTrackerSink`.

    Called inside the worker that runs the run, with ``tracking`` as
    :func:`~sweeplab.track.config.prepare_tracking` returned it. ``config`` is the run's
    resolved config (wandb config / MLflow params); ``study`` and ``tracking.group`` go
    along as wandb config and group / MLflow tags. A tracker that fails to start is
    reported once through ``warn`` and stays off (it is still in the list, inactive).
    """
    run_dir = Path(run_dir)
    sinks: list[SafeTrackerSink] = []
    if tracking.wandb_enabled:
        def make_wandb() -> TrackerSink:
            from sweeplab.track.wandb_sink import WandbSink

            return WandbSink(tracking, run_dir=run_dir, run_name=run_name, study=study,
                             config=config)

        sinks.append(SafeTrackerSink("wandb", make_wandb, warn))
    if tracking.mlflow_enabled:
        def make_mlflow() -> TrackerSink:
            from sweeplab.track.mlflow_sink import MlflowSink

            return MlflowSink(tracking, run_dir=run_dir, run_name=run_name, study=study,
                              config=config)

        sinks.append(SafeTrackerSink("mlflow", make_mlflow, warn))
    return sinks


def read_tracker_ids(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``<run_dir>/trackers.json`` as a dict (empty when missing or unreadable)."""
    path = Path(run_dir) / TRACKERS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_tracker_id(run_dir: str | Path, tracker: str, entry: dict[str, Any]) -> None:
    """Set ``trackers.json[tracker] = entry``, keeping the other trackers' entries."""
    data = read_tracker_ids(run_dir)
    data[tracker] = entry
    save_json(data, Path(run_dir) / TRACKERS_FILE)


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The entries of ``metrics`` that are real numbers, as floats (others dropped).

    Booleans count as 0/1; ``None`` and strings (which a local row may hold) are left
    out, since a tracker's metric is a number. Plain floats take a fast path: this runs
    on every logged step.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        kind = type(value)
        if kind is float:
            out[key] = value
        elif kind is int or isinstance(value, numbers.Real):
            out[key] = float(value)
        elif hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy/torch 0-d
            item = value.item()
            if isinstance(item, numbers.Real):
                out[key] = float(item)
    return out


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys: ``{"data": {"n": 5}}`` -> ``{"data.n": 5}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def is_number(value: Any) -> bool:
    """Whether ``value`` is a real number that is not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
