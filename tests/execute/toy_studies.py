"""Studies for the local executor's tests: one that can kill its own worker process.

Registered when imported; a spawned worker imports this module by the ``study_module``
its jobs carry, as it would any third-party study.
"""

from __future__ import annotations

import os
import signal

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
