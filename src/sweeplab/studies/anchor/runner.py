"""The anchor studies' runs, end to end (the work behind :mod:`.study`).

A run alone is a batch of one of :mod:`.batched` (one training loop and one checkpoint
format for both paths: a run stopped in a batch resumes alone, as the grid resumes it).
Kept apart from the registration so that a grid's driver validates and plans runs
without importing torch; worker processes import this module before their first job
(the studies' ``warm`` modules).
"""

from __future__ import annotations

from typing import Any

from sweeplab.core.context import RunContext
from sweeplab.studies.anchor.batched import run_batch
from sweeplab.studies.anchor.config import CompositeConfig, InverseConfig
from sweeplab.studies.anchor.pool import COMPOSITE, INVERSE, Task


def _alone(task: Task, cfg: Any, ctx: RunContext) -> dict[str, float]:
    (outcome,) = run_batch(task, [cfg], [ctx])
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def run_composite(cfg: CompositeConfig, ctx: RunContext) -> dict[str, float]:
    """Anchor-function composite task: composite vs symmetric solution of pair (4, 3)."""
    return _alone(COMPOSITE, cfg, ctx)


def run_inverse(cfg: InverseConfig, ctx: RunContext) -> dict[str, float]:
    """Inverse sequence matching: find the key whose reversal is the query."""
    return _alone(INVERSE, cfg, ctx)


def run_composite_batch(cfgs: list[CompositeConfig], ctxs: list[RunContext]) -> list[Any]:
    """Compatible composite-task runs as one batched computation."""
    return run_batch(COMPOSITE, cfgs, ctxs)


def run_inverse_batch(cfgs: list[InverseConfig], ctxs: list[RunContext]) -> list[Any]:
    """Compatible inverse-task runs as one batched computation."""
    return run_batch(INVERSE, cfgs, ctxs)
