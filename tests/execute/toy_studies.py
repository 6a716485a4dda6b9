"""Studies for the executors' tests: one that kills its own worker, one that batches,
one that fills a disk.

Registered when imported; a spawned worker imports this module by the ``study_module``
its jobs carry, as it would any third-party study.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sweeplab import RunContext, StudyConfig, register_study


class CrashConfig(StudyConfig):
    """``x`` is doubled; ``crash`` kills the worker process running the study (SIGKILL)."""

    x: int = 0
    crash: bool = False


@register_study("toy-crash", config=CrashConfig)
def crash_study(cfg: CrashConfig, ctx: RunContext) -> dict[str, float]:
    """Doubles x, or dies without a word like a segfaulting or OOM-killed worker."""
    if cfg.crash:
        os.kill(os.getpid(), signal.SIGKILL)
    ctx.log(0, y=2.0 * cfg.x)
    return {"y": 2.0 * cfg.x}


class BatchConfig(StudyConfig):
    """``x`` is doubled for ``steps`` steps; ``fail`` fails the run (alone in its batch)."""

    x: float = 0.0
    steps: int = 3
    fail: bool = False
    group: str = "a"


def _walk(cfg: BatchConfig, ctx: RunContext) -> dict[str, float]:
    for step in range(cfg.steps):
        ctx.log(step, y=2.0 * cfg.x * step)
    return {"y": 2.0 * cfg.x * (cfg.steps - 1)}


def batch_key(cfg: BatchConfig) -> tuple | None:
    """Runs of one ``group`` and step count batch together."""
    return (cfg.group, cfg.steps)


def run_batch(cfgs: list[BatchConfig], ctxs: list[RunContext]) -> list:
    """The same walk for every run, computed 'together'; a failing run fails alone."""
    out: list = []
    for cfg, ctx in zip(cfgs, ctxs):
        if cfg.fail:
            out.append(RuntimeError(f"x={cfg.x} fails"))
            continue
        final = _walk(cfg, ctx)
        out.append({**final, "batch_size": len(cfgs)})
    return out


@register_study("toy-batch", config=BatchConfig, batch_key=batch_key, run_batch=run_batch)
def batch_study(cfg: BatchConfig, ctx: RunContext) -> dict[str, float]:
    """The walk alone."""
    if cfg.fail:
        raise RuntimeError(f"x={cfg.x} fails")
    return {**_walk(cfg, ctx), "batch_size": 1}


class FillConfig(StudyConfig):
    """``rows`` metric rows of ``width`` values each (about ``rows * width`` bytes)."""

    x: int = 0
    rows: int = 100
    width: int = 40
    wait_for: str = ""
    """A file (relative to the grid directory) to wait for, up to a minute, before writing."""
    hold_until: str = ""
    """A file (relative to the grid directory): stay running after logging the rows until
    it exists, up to a minute (to be in flight when a disk fills)."""


@register_study("toy-fill", config=FillConfig)
def fill_study(cfg: FillConfig, ctx: RunContext) -> dict[str, float]:
    """Writes a lot of metrics (to fill a small disk); every value is a known function of
    the step, so a finished run's metrics can be checked row by row."""
    _wait_for(ctx.run_dir.parent, cfg.wait_for)
    for step in range(cfg.rows):
        ctx.log(step, **{f"m{i}": cfg.x + step + i / 1000 for i in range(cfg.width)})
    _wait_for(ctx.run_dir.parent, cfg.hold_until)
    return {"y": float(cfg.x), "rows": float(cfg.rows)}


def _wait_for(folder: Path, name: str, timeout: float = 60.0) -> None:
    """Wait until ``folder/name`` exists (at most ``timeout`` s; at once for no name)."""
    deadline = time.monotonic() + timeout
    while name and not (folder / name).exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _fill_batch(cfgs: list[FillConfig], ctxs: list[RunContext]) -> list:
    """The runs of a batch one after another, each written out as it ends (as a
    checkpoint would): a full disk meets the batch, not one run's end, and fails it whole."""
    out = []
    for cfg, ctx in zip(cfgs, ctxs):
        out.append(fill_study(cfg, ctx))
        ctx.flush()
    return out


register_study("toy-fill-batch", config=FillConfig, batch_key=lambda cfg: (cfg.rows, cfg.width),
               run_batch=_fill_batch)(fill_study)
