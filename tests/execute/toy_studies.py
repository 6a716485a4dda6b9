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
