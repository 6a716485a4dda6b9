"""Execute one run of a study in its run directory: the piece every executor calls.

Writes ``config.yaml``, ``provenance.json`` and ``status.json`` before the study starts,
the log to ``logs/run.log``, and ``final.json`` when it ends. A failure (an exception, a
NaN loss, Ctrl-C) is recorded in ``status.json`` with its error and traceback in the
log: a failed run is data, not lost work. A full disk is no failure of the run: it is
recorded as an interruption (``interrupted: true``, the file that found no space in the
error) and the run's result is ``interrupted`` with ``disk_full`` naming that file, so the
caller can stop and a resume redoes the run (:mod:`sweeplab.core.disk`).

With ``resume=True`` the run continues from ``checkpoints/last.pt`` when there is one
of the same config: metrics.jsonl is cut back to the rows the checkpoint covers and the
study picks up its state with :meth:`RunContext.restore`. Without a usable checkpoint
the run starts over in the same directory.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.core.checkpoint import CheckpointError, checkpoint_path, load_checkpoint
from sweeplab.core.config import StudyConfig
from sweeplab.core.context import RunContext
from sweeplab.core.disk import disk_full_file, is_disk_full
from sweeplab.core.experiment import set_seeds
from sweeplab.core.provenance import collect_provenance
from sweeplab.core.registry import Study
from sweeplab.core.rundir import (
    CONFIG_FILE,
    FINAL_FILE,
    METRICS_JSONL,
    OUTPUTS,
    PROVENANCE_FILE,
    RUN_LOG,
    RunResult,
    RunStatus,
    read_status,
    record_run_failure,
    save_json,
    save_yaml,
    write_status,
)
from sweeplab.track.config import TrackingConfig
from sweeplab.track.local import run_context

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RunLogHandler(logging.FileHandler):
    """``logs/run.log``. On a full disk a line that cannot be written is dropped quietly:
    the run is interrupted and runs again, and a traceback on stderr for every lost line
    would bury the one message that says so."""

    def handleError(self, record: logging.LogRecord) -> None:
        if is_disk_full(sys.exc_info()[1]):
            return
        super().handleError(record)


def write_run_header(
    study: Study, cfg: StudyConfig, run_dir: Path, cli: dict[str, Any] | None = None
) -> None:
    """Write config.yaml (resolved config, hash, CLI args) and provenance.json.

    A study found by reference (a user's file, a command) also records the reference
    and its folder, so ``sweeplab run --resume`` finds it again.
    """
    header: dict[str, Any] = {
        "study": study.name,
        "config_hash": cfg.config_hash(),
        "config": cfg.canonical(),
        "cli": cli or {},
    }
    if study.ref is not None:
        header.update(study_ref=study.ref, study_dir=study.base_dir)
    save_yaml(header, run_dir / CONFIG_FILE)
    save_json(collect_provenance(seed=getattr(cfg, "seed", None)), run_dir / PROVENANCE_FILE)


def resume_point(cfg: StudyConfig, run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint to resume from (or ``None``) and, if one exists but is unusable, why.

    A checkpoint of another config raises :class:`CheckpointError`: resuming it would
    mix two experiments.
    """
    path = checkpoint_path(run_dir)
    if not path.exists():
        return None, None
    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as exc:
        return None, f"{exc}; starting over"
    if checkpoint.get("config_hash") != cfg.config_hash():
        raise CheckpointError(
            f"checkpoint {path} belongs to config {checkpoint.get('config_hash')}, "
            f"not {cfg.config_hash()}; use a new run directory for a changed config"
        )
    jsonl = run_dir / METRICS_JSONL
    size = jsonl.stat().st_size if jsonl.exists() else 0
    if checkpoint["metrics"]["offset"] > size:
        return None, f"checkpoint {path} covers more metrics than metrics.jsonl; starting over"
    return checkpoint, None


@dataclass
class RunInProgress:
    """A started run: its context, status, log handler and trackers, until it ends."""

    study: Study
    cfg: StudyConfig
    run_dir: Path
    ctx: RunContext
    status: RunStatus
    handler: logging.Handler
    log_target: logging.Logger
    trackers: list[Any]
    started: float
    name: str = ""
    cpu_started: float = field(default_factory=time.process_time)

    def elapsed(self) -> tuple[float, float]:
        """Wall and CPU seconds since the run started."""
        return time.time() - self.started, time.process_time() - self.cpu_started


def start_run(
    study: Study,
    cfg: StudyConfig,
    run_dir: str | Path,
    cli: dict[str, Any] | None = None,
    resume: bool = False,
    tracking: TrackingConfig | None = None,
    run_name: str | None = None,
    logger_name: str | None = None,
) -> RunInProgress:
    """Write the run's header files and ``running`` status; set up its context and log.

    ``logger_name`` None: the run has the process to itself and ``logs/run.log`` takes
    every ``sweeplab`` message. Otherwise (runs of one batch) it takes only that logger's.
    """
    run_dir = Path(run_dir)
    checkpoint, unusable = resume_point(cfg, run_dir) if resume else (None, None)
    previous = read_status(run_dir)
    if checkpoint is None:
        for name in OUTPUTS:
            (run_dir / name).unlink(missing_ok=True)
    write_run_header(study, cfg, run_dir, cli)
    status = RunStatus()
    status.started_by_this_process(cfg.config_hash(), previous)
    if checkpoint is not None:
        status.resumed_from_epoch = int(checkpoint["epoch"])
    write_status(run_dir, status)

    handler = RunLogHandler(run_dir / RUN_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("sweeplab")
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    log = logging.getLogger(logger_name or "sweeplab.run")
    target = log if logger_name else root
    target.addHandler(handler)
    try:
        ctx = run_context(run_dir, cfg, logger=log, resume=checkpoint, step_key=study.step_key)
        log.info("run %s of study %s started in %s", cfg.config_hash(), study.name, run_dir)
        trackers = _trackers(tracking, study, cfg, run_dir, run_name, ctx)
    except BaseException:  # the next run of this process must not log into this one's file
        target.removeHandler(handler)
        handler.close()
        raise
    if unusable:
        ctx.warn(unusable)
    if checkpoint is not None:
        log.info("resuming from the checkpoint at epoch %d", checkpoint["epoch"])
        ctx.train_log.event(f"resumed from the checkpoint at epoch {checkpoint['epoch']}")
    return RunInProgress(study, cfg, run_dir, ctx, status, handler, target, trackers,
                         time.time(), run_name or run_dir.name)


def finish_done(run: RunInProgress, final: dict[str, Any]) -> RunResult:
    """Record a run's final metrics (final.json, trackers' summary) and ``done`` status.

    The metric files are written out first and ``done`` comes last, so a run is never
    ``done`` with rows missing (a full disk may stop any write before it).
    """
    run.ctx.flush()
    final = dict(final)
    for tracker in run.trackers:
        tracker.summary(final)
    if run.ctx.warnings:
        final.setdefault("warnings", list(run.ctx.warnings))
    save_json(final, run.run_dir / FINAL_FILE)
    duration, cpu = run.elapsed()
    run.status.ended_now("done", duration, cpu)
    write_status(run.run_dir, run.status)
    run.ctx.logger.info("run done in %.2fs", duration)
    with suppress(OSError):  # the run is recorded done: a lost log line changes nothing
        run.ctx.train_log.event(f"done in {duration:.2f}s")
    _close(run, "done", best_effort=True)
    return RunResult(run.name, "done", final=final, duration_s=duration, run_dir=run.run_dir)


def disk_full_error(path: str) -> str:
    """The error recorded for a run a full disk stopped."""
    return f"disk full writing {path}"


def finish_failed(run: RunInProgress, exc: BaseException) -> RunResult:
    """Record a failure (``interrupted: true`` for Ctrl-C and signals) with its traceback.

    A full disk anywhere in ``exc``'s chain is recorded as an interruption instead
    (:func:`finish_disk_full`).
    """
    full = disk_full_file(exc)
    if full is not None:
        return finish_disk_full(run, full or str(run.run_dir))
    duration, cpu = run.elapsed()
    interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
    error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    log = run.ctx.logger
    log.error("run failed after %.2fs: %s", duration, error)
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log.info("traceback of the failure:\n%s", trace.rstrip())
    run.status.ended_now("failed", duration, cpu, error)
    if interrupted:
        run.status.interrupted = True
        run.ctx.train_log.event(f"interrupted: {error}")
    write_status(run.run_dir, run.status)
    _close(run, "interrupted" if interrupted else "failed")
    return RunResult(run.name, "failed", error=error, duration_s=duration, run_dir=run.run_dir)


def finish_disk_full(run: RunInProgress, path: str) -> RunResult:
    """Record a run stopped by a full disk at ``path``: interrupted, to be run again.

    Every write here may meet the full disk too: the status falls back to a rewrite in
    place (:func:`~sweeplab.core.rundir.save_small_json`), the rest is best effort, and
    nothing is printed (the caller reports the stop once).
    """
    duration, cpu = run.elapsed()
    error = disk_full_error(path)
    run.ctx.logger.info("run interrupted after %.2fs: %s", duration, error)
    run.status.ended_now("failed", duration, cpu, error)
    run.status.interrupted = True
    write_status(run.run_dir, run.status, small=True)
    with suppress(OSError):
        run.ctx.train_log.event(f"interrupted: {error}")
    _close(run, "interrupted", best_effort=True)
    return RunResult(run.name, "interrupted", error=error, duration_s=duration,
                     disk_full=path, run_dir=run.run_dir)


def record_disk_full(run_dir: Path, config_hash: str, exc: BaseException,
                     name: str | None = None) -> RunResult | None:
    """For a run that a full disk stopped before it started (``exc``): mark it
    interrupted and return its result; ``None`` when ``exc`` is no full disk."""
    full = disk_full_file(exc)
    if full is None:
        return None
    path = full or str(run_dir)
    error = disk_full_error(path)
    record_run_failure(run_dir, config_hash, error, interrupted=True)
    return RunResult(name or Path(run_dir).name, "interrupted", error=error, disk_full=path,
                     run_dir=Path(run_dir))


def execute_run(
    study: Study,
    cfg: StudyConfig,
    run_dir: str | Path,
    cli: dict[str, Any] | None = None,
    resume: bool = False,
    tracking: TrackingConfig | None = None,
    run_name: str | None = None,
) -> RunResult:
    """Run ``study`` with ``cfg`` inside ``run_dir`` and record everything it produces.

    Exceptions become a ``failed`` status (with ``interrupted: true`` for Ctrl-C and
    SIGTERM); an interruption is re-raised after it is recorded. A full disk, even
    before the study starts, returns an ``interrupted`` result naming the file.
    ``resume`` continues from the run's checkpoint when it has one (see the module
    doc). ``tracking`` (as :func:`~sweeplab.track.config.prepare_tracking` resolved it)
    adds wandb/MLflow sinks named ``run_name`` (default: the directory's name); they can
    fail, the run cannot.
    """
    try:
        run = start_run(study, cfg, run_dir, cli, resume, tracking, run_name)
    except OSError as exc:
        stopped = record_disk_full(Path(run_dir), cfg.config_hash(), exc, run_name)
        if stopped is None:
            raise
        return stopped
    try:
        if study.seeds != "none" and hasattr(cfg, "seed"):
            set_seeds(int(cfg.seed), import_torch=study.seeds == "all")
        final = study.fn(cfg, run.ctx) or {}
        return finish_done(run, final)
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, then handled
        result = finish_failed(run, exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return result


def _trackers(
    tracking: TrackingConfig | None,
    study: Study,
    cfg: StudyConfig,
    run_dir: Path,
    run_name: str | None,
    ctx: RunContext,
) -> list[Any]:
    """The run's wandb/MLflow sinks, attached to ``ctx`` (none without ``tracking``)."""
    if tracking is None or not tracking.enabled:
        return []
    from sweeplab.track.trackers import make_tracker_sinks

    sinks = make_tracker_sinks(
        tracking, run_dir=run_dir, run_name=run_name or run_dir.name, study=study.name,
        config=cfg.canonical(), warn=ctx.warn,
    )
    ctx.sinks.extend(sinks)
    return sinks


def _close(run: RunInProgress, state: str, best_effort: bool = False) -> None:
    """Flush the metrics, end the trackers' runs as ``state``, close the files and the log.

    ``best_effort``: a write error (a full disk) skips that step, never the others, so
    every file is closed and the log handler is detached whatever fails.
    """
    guard = (lambda: suppress(OSError)) if best_effort else nullcontext
    with guard():
        run.ctx.flush()
    for tracker in run.trackers:  # each ends its run as `state`; ctx.close() is then a no-op
        with guard():
            tracker.close(state)
    for sink in run.ctx.sinks if best_effort else ():
        with guard():
            sink.close()
    with guard():
        run.ctx.close()
    run.log_target.removeHandler(run.handler)
    with guard():
        run.handler.close()
