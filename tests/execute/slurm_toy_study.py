"""A tiny study for the Slurm executor's tests, importable by the Slurm tasks themselves.

The tests put this folder on the tasks' PYTHONPATH (a ``setup`` line of the batch script)
and ask each task to import this module (``imports``), which registers the study there.
The study records where it ran (Slurm's array ids) in its final metrics, so a test can tell
a real Slurm array task from a run in the test's own process.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Literal

from pydantic import Field

from sweeplab import RunContext, StudyConfig, register_study

STUDY = "slurm-toy"


class SlurmToyConfig(StudyConfig):
    """``x`` is squared; ``mode`` makes the run succeed, raise, cancel its own Slurm task
    (which then dies without a result) or sleep (to be interrupted)."""

    x: float = 1.0
    mode: Literal["ok", "raise", "cancel", "sleep"] = "ok"
    sleep_s: float = Field(60.0, ge=0)


def _slurm_id(name: str) -> float:
    return float(os.environ.get(name, "-1"))


@register_study(STUDY, config=SlurmToyConfig)
def run(cfg: SlurmToyConfig, ctx: RunContext) -> dict[str, float]:
    """Squares x, and says which Slurm array task it ran in."""
    if cfg.mode == "raise":
        raise RuntimeError(f"toy failure at x={cfg.x:g}")
    if cfg.mode == "cancel":
        subprocess.run(["scancel", os.environ["SLURM_JOB_ID"]], check=True)
        time.sleep(cfg.sleep_s)  # Slurm kills the task meanwhile
    if cfg.mode == "sleep":
        time.sleep(cfg.sleep_s)
    ctx.log(0, y=cfg.x**2)
    return {
        "y": cfg.x**2,
        "slurm_array_job_id": _slurm_id("SLURM_ARRAY_JOB_ID"),
        "slurm_array_task_id": _slurm_id("SLURM_ARRAY_TASK_ID"),
    }
