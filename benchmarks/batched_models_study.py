"""The batched-models benchmark's runs as a sweeplab study, for its executor comparison.

``bench_batched_models.py`` runs a grid of this study (one run per seed) through
sweeplab's local executor with 2 workers, once with ``batch`` (each worker trains its
share of the runs as one :func:`sweeplab.batched.train_batched` batch) and once without
(each worker trains its runs one by one, the loop a study runs alone). It is found as
``benchmarks/batched_models_study.py:bench-batched-models`` by the grid and by every
worker, like a user's own study.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import Field

from sweeplab import RunContext, StudyConfig, register_study

sys.path.insert(0, str(Path(__file__).parent))
from bench_batched_models import Case, batched, cases, one_by_one  # noqa: E402


class Config(StudyConfig):
    """One run of a benchmark case: its seed and how many epochs of the case's data."""

    model: Literal["mlp", "mlp2", "cnn", "mamba", "mamba-cpu", "transformer",
                   "large-mlp"] = "mlp"
    seed: int = Field(0, ge=0)
    epochs: int = Field(1, ge=1, description="epochs over the case's data")


def _case(model: str) -> Case:
    return cases([model])[0]


def batch_key(cfg: Config) -> tuple:
    """Runs of one model and length train together."""
    return (cfg.model, cfg.epochs)


def run_batch(cfgs: list[Config], ctxs: list[RunContext]) -> list[dict[str, float]]:
    """The runs as one batch (``always_batch``: the comparison is batched vs not)."""
    case = _case(cfgs[0].model)
    batched(case, [case.run(cfg.seed, cfg.epochs) for cfg in cfgs])
    return [{"trained": 1.0} for _ in cfgs]


@register_study("bench-batched-models", config=Config, batch_key=batch_key,
                run_batch=run_batch)
def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """One run alone: the plain PyTorch loop of the benchmark's one-by-one column."""
    case = _case(cfg.model)
    one_by_one(case, [case.run(cfg.seed, cfg.epochs)])
    return {"trained": 1.0}
