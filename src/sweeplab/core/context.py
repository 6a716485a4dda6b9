"""RunContext: what a study sees of its run directory.

A study logs metrics, saves figures, artifacts and checkpoints through its context and
never needs to know where files go, which trackers listen or how signals arrive (the
layout is :mod:`sweeplab.core.rundir`'s). The context writes no metric file itself: it
is handed its sinks (the run's metric files, its training log, any trackers) by whoever
starts the run (:func:`sweeplab.track.local.run_context`), so the framework's core
depends on no sink.

Checkpoints and interruption, in a study's training loop::

    state = ctx.restore()                      # None unless resuming from a checkpoint
    start = state["epoch"] if state else 0     # (the study saves its own position)
    with ctx.interruptible(state_fn, last_epoch=cfg.epochs) as at_epoch:
        for epoch in range(start, cfg.epochs + 1):
            at_epoch(epoch)       # checkpoint every save_interval epochs and at the end;
            ...                   # on SIGTERM/SIGINT: checkpoint now, then stop

Inside the ``interruptible`` block a SIGTERM (Slurm preemption, ``kill``), SIGINT
(Ctrl-C) or SIGUSR2 (a Slurm time limit ahead) only sets a flag; the next ``at_epoch``
writes a checkpoint and raises :class:`RunInterrupted`, so the run stops at a step
boundary with its state saved. A second signal more than a second after the first
stops the run at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sweeplab.core.checkpoint import (
    checkpoint_path,
    make_checkpoint,
    restore_rng,
    save_checkpoint,
)
from sweeplab.core.config import StudyConfig
from sweeplab.core.rundir import save_figure, save_json

StateFn = Callable[[], dict[str, Any]]


class MetricSink(Protocol):
    """Anything that receives a run's metrics (local files, wandb, mlflow, ...)."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class MetricsFile(MetricSink, Protocol):
    """The run's own metric file: a checkpoint records how much of it the state covers."""

    jsonl_path: Path

    def position(self) -> dict[str, int]:
        """Flush, and say where the file ends: ``{"offset": bytes, "rows": lines}``."""
        ...


class EventLog(MetricSink, Protocol):
    """The run's human-readable training log, which also takes events (resume, ...)."""

    def event(self, text: str) -> None: ...

_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR2") if hasattr(signal, name)
)
"""SIGUSR2 is what Slurm sends ahead of a time limit when asked (``--signal``)."""
_REPEAT_GRACE_S = 1.0
"""A second signal this soon after the first is the same interruption (e.g. Ctrl-C
reaching a worker both from the terminal and forwarded by the grid's driver)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal at a step boundary, after saving its checkpoint."""


class _StopRequest:
    """The signal that asked this process to stop, pending the next step boundary."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.time = 0.0
        self._saving = 0

    @contextmanager
    def saving(self) -> Iterator[None]:
        """While a checkpoint is written, a repeated signal never cuts it short."""
        self._saving += 1
        try:
            yield
        finally:
            self._saving -= 1

    def handler(self, signum: int, frame: object) -> None:
        """Remember the first signal; a later one (past the grace time) stops at once."""
        if self.signum is None:
            self.signum, self.time = signum, time.monotonic()
        elif not self._saving and time.monotonic() - self.time > _REPEAT_GRACE_S:
            raise KeyboardInterrupt(f"signal {signum} (second)")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Install :meth:`handler` for the stop signals (main thread only), then restore."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self.signum = None
        previous = {sig: signal.signal(sig, self.handler) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        if self.signum is not None:  # it came after the last step boundary
            name, self.signum = self.name, None
            raise RunInterrupted(f"{name} after the last epoch")


_STOP = _StopRequest()
"""One per process: signals reach a process, not a run."""


@contextmanager
def stop_points(save: Callable[[], None]) -> Iterator[Callable[[str], None]]:
    """Deferred stop signals for a loop that keeps its own partial results (not a checkpoint).

    Yields ``stop_point(where)``: on a pending SIGTERM/SIGINT/SIGUSR2 it calls ``save()``
    (never cut short by a repeated signal), then raises :class:`RunInterrupted`. For
    pipelines whose units of work are files of their own (e.g. one trained model each),
    where a run-level checkpoint would tie them to one config.
    """

    def stop_point(where: str) -> None:
        if _STOP.signum is not None:
            name = _STOP.name
            with _STOP.saving():
                save()
            _STOP.signum = None
            raise RunInterrupted(f"{name} {where}; partial results saved")

    with _STOP.deferred():
        yield stop_point
        stop_point("at the end")  # a signal after the last stop point still saves first


@contextmanager
def interruptible_batch(
    contexts: Sequence[RunContext],
    state_fns: Sequence[StateFn],
    last_epoch: int | None = None,
) -> Iterator[Callable[[int], None]]:
    """:meth:`RunContext.interruptible` for runs trained together in one loop.

    ``at_epoch(epoch)`` checkpoints each run when it is due; on a stop signal it
    checkpoints every run, then raises :class:`RunInterrupted`. The sequences are read at
    every call, so a batch may drop a failed run by removing it from both (same index);
    it is then no longer checkpointed.
    """

    def at_epoch(epoch: int) -> None:
        if _STOP.signum is not None:
            name = _STOP.name
            for ctx, state_fn in zip(contexts, state_fns, strict=True):
                ctx.checkpoint(epoch, state_fn(), reason="signal")
                ctx.logger.warning("%s: stopped at epoch %d, checkpoint saved", name, epoch)
            _STOP.signum = None
            raise RunInterrupted(f"{name} at epoch {epoch}; checkpoint saved")
        for ctx, state_fn in zip(contexts, state_fns, strict=True):
            ctx._periodic(epoch, state_fn, last_epoch)

    with _STOP.deferred():
        yield at_epoch


class RunContext:
    """Handle a study uses to record its run: metrics, figures, checkpoints, warnings.

    ``metrics`` is the run's metric file (its position goes into each checkpoint),
    ``train_log`` its training log; both, and any further ``sinks``, receive every
    logged row. ``resume`` is the checkpoint the run continues from (the metric file
    must already be cut back to it).
    """

    def __init__(
        self,
        run_dir: str | Path,
        config: StudyConfig,
        metrics: MetricsFile,
        train_log: EventLog,
        sinks: Iterable[MetricSink] = (),
        logger: logging.Logger | None = None,
        resume: dict[str, Any] | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.config = config
        self.logger = logger or logging.getLogger("sweeplab.run")
        self._resume = resume
        self.local = metrics
        self.train_log = train_log
        self.sinks: list[MetricSink] = [self.local, self.train_log, *sinks]
        self.warnings: list[str] = list(resume["warnings"]) if resume else []
        self.save_interval = int(getattr(config, "save_interval", 0) or 0)
        self.checkpoints_saved = 0

    # metrics and files -------------------------------------------------------------

    def log(self, step: int, **metrics: float) -> None:
        """Record scalar metrics for ``step`` in metrics.jsonl/.csv, train.log and every sink."""
        for sink in self.sinks:
            sink.log(step, metrics)

    def flush(self) -> None:
        """Make every logged row visible in metrics.jsonl and metrics.csv (e.g. before
        reading them)."""
        self.local.position()

    def path(self, *parts: str) -> Path:
        """A path inside the run directory (parents created)."""
        path = self.run_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_json(self, name: str, obj: Any) -> Path:
        """Save ``obj`` as ``<run_dir>/<name>`` atomically."""
        return save_json(obj, self.path(name))

    def save_figure(
        self, name: str, fig: Any, formats: tuple[str, ...] = ("png", "pdf")
    ) -> list[Path]:
        """Save a matplotlib figure as ``figs/<name>.png`` and ``.pdf`` (atomically, as
        the figure's own settings draw it), then close it."""
        return save_figure(fig, self.path("figs", name), formats=formats)

    def warn(self, message: str) -> None:
        """Log a warning and keep it for ``final.json`` (so it is not lost in a log)."""
        self.logger.warning(message)
        self.warnings.append(message)

    # checkpoints -------------------------------------------------------------------

    @property
    def resumed_epoch(self) -> int | None:
        """The epoch of the checkpoint this run resumes from, or ``None`` for a fresh run."""
        return None if self._resume is None else int(self._resume["epoch"])

    def restore(self) -> dict[str, Any] | None:
        """The study's state from the checkpoint this run resumes, or ``None``.

        Restores the global torch/NumPy/Python generators as they were when it was saved.
        """
        if self._resume is None:
            return None
        restore_rng(self._resume["rng"])
        return self._resume["state"]

    def checkpoint(self, epoch: int, state: dict[str, Any], reason: str = "interval") -> Path:
        """Save ``state`` (after ``epoch`` epochs) with the metric files' position, atomically."""
        with _STOP.saving():
            checkpoint = make_checkpoint(
                config_hash=self.config.config_hash(),
                epoch=epoch,
                reason=reason,
                metrics=self.local.position(),
                warnings=self.warnings,
                state=state,
            )
            path = save_checkpoint(checkpoint_path(self.run_dir), checkpoint)
        self.checkpoints_saved += 1
        self.train_log.event(f"checkpoint at epoch {epoch} ({reason})")
        return path

    @contextmanager
    def interruptible(
        self, state_fn: StateFn, last_epoch: int | None = None
    ) -> Iterator[Callable[[int], None]]:
        """A training loop's checkpoint window; yields ``at_epoch(epoch)`` (see module doc).

        ``at_epoch`` checkpoints every ``save_interval`` epochs and at ``last_epoch``, and
        on a pending SIGTERM/SIGINT checkpoints, then raises :class:`RunInterrupted`.
        Signal handlers are installed only in the main thread, and restored on exit.
        """
        with interruptible_batch([self], [state_fn], last_epoch) as at_epoch:
            yield at_epoch

    def _periodic(self, epoch: int, state_fn: StateFn, last_epoch: int | None) -> None:
        """Checkpoint when ``epoch`` is due (every save_interval, and the last)."""
        if epoch == self.resumed_epoch:
            return
        due = self.save_interval > 0 and epoch % self.save_interval == 0 and epoch > 0
        if due or epoch == last_epoch:
            reason = "final" if epoch == last_epoch else "interval"
            self.checkpoint(epoch, state_fn(), reason=reason)

    def close(self) -> None:
        """Close every sink (idempotent)."""
        for sink in self.sinks:
            sink.close()
