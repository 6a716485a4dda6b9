"""Execute one run of a study in its run directory: the piece every executor calls.

Writes ``config.yaml``, ``provenance.json`` and ``status.json`` before the study starts,
the log to ``logs/run.log``, and ``final.json`` when it ends. A failure (an exception, a
NaN loss, Ctrl-C) is recorded in ``status.json`` with its error and traceback in the
log: a failed run is data, not lost work.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweeplab.core.config import StudyConfig
from sweeplab.core.context import RunContext
from sweeplab.core.experiment import save_json, save_yaml, set_seeds
from sweeplab.core.provenance import collect_provenance
from sweeplab.core.registry import Study

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass
class RunResult:
    """Outcome of one run: its directory, state (done/failed), final metrics, error."""

    run_dir: Path
    state: str
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_run_header(
    study: Study, cfg: StudyConfig, run_dir: Path, cli: dict[str, Any] | None = None
) -> None:
    """Write config.yaml (resolved config, hash, CLI args) and provenance.json."""
    save_yaml(
        {
            "study": study.name,
            "config_hash": cfg.config_hash(),
            "config": cfg.canonical(),
            "cli": cli or {},
        },
        run_dir / "config.yaml",
    )
    save_json(collect_provenance(seed=getattr(cfg, "seed", None)), run_dir / "provenance.json")


def execute_run(
    study: Study,
    cfg: StudyConfig,
    run_dir: str | Path,
    cli: dict[str, Any] | None = None,
) -> RunResult:
    """Run ``study`` with ``cfg`` inside ``run_dir`` and record everything it produces.

    Exceptions become a ``failed`` status (with ``interrupted: true`` for Ctrl-C and
    SIGTERM); an interruption is re-raised after it is recorded.
    """
    run_dir = Path(run_dir)
    write_run_header(study, cfg, run_dir, cli)
    started = time.time()
    status: dict[str, Any] = {
        "state": "running",
        "started": _now(),
        "config_hash": cfg.config_hash(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    save_json(status, run_dir / "status.json")

    handler = logging.FileHandler(run_dir / "logs" / "run.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger("sweeplab")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    log = logging.getLogger("sweeplab.run")
    ctx = RunContext(run_dir, cfg, logger=log)
    log.info("run %s of study %s started in %s", cfg.config_hash(), study.name, run_dir)
    try:
        if hasattr(cfg, "seed"):
            set_seeds(int(cfg.seed))
        final = dict(study.fn(cfg, ctx) or {})
        if ctx.warnings:
            final.setdefault("warnings", list(ctx.warnings))
        save_json(final, run_dir / "final.json")
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, then handled
        duration = time.time() - started
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        log.error("run failed after %.2fs: %s", duration, error)
        log.info("traceback of the failure:\n%s", traceback.format_exc())
        status.update(state="failed", ended=_now(), duration_s=duration, error=error)
        if interrupted:
            status["interrupted"] = True
        save_json(status, run_dir / "status.json")
        _close(ctx, handler, root)
        if interrupted:
            raise
        return RunResult(run_dir, "failed", error=error, duration_s=duration)
    duration = time.time() - started
    status.update(state="done", ended=_now(), duration_s=duration)
    save_json(status, run_dir / "status.json")
    log.info("run done in %.2fs", duration)
    _close(ctx, handler, root)
    return RunResult(run_dir, "done", final=final, duration_s=duration)


def _close(ctx: RunContext, handler: logging.Handler, root: logging.Logger) -> None:
    ctx.close()
    root.removeHandler(handler)
    handler.close()
