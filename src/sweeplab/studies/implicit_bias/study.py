"""The registered ``implicit-bias`` study: one run, end to end.

1. Load and preprocess the data; save it as ``dataset.npz`` (X, y as trained on).
2. Baselines in input space: l2 SVM, logistic regression, lp max-margin, and the linear
   MD solution (L = 1, zero initialization, same potential, loss and schedule).
3. Train the deep linear network with mirror descent, logging every ``log_interval``
   epochs: loss, accuracy, angles to every baseline, margins, alignment, norm balance.
   Checkpoints (every ``save_interval`` epochs, at the end, and on SIGTERM/SIGINT) hold
   the trainer's state, the baselines and the initial weights, so a resumed run skips
   the baselines and continues bit for bit.
4. Save ``directions.json``, the figures, and return the final metrics.
"""

from __future__ import annotations

from typing import Any

from sweeplab.core.context import RunContext
from sweeplab.core.registry import register_study
from sweeplab.data import check_dataset_available
from sweeplab.studies.implicit_bias.batch_keys import batch_key
from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig
from sweeplab.studies.implicit_bias.cost import run_cost
from sweeplab.studies.implicit_bias.spec import FLAT_SPEC

RUNNER = "sweeplab.studies.implicit_bias.runner"
BATCHED = "sweeplab.studies.implicit_bias.batched"
ANALYSIS = "sweeplab.studies.implicit_bias.analysis:ANALYSIS"
REQUIRES = ("torch", "sklearn", "cvxpy", "scipy", "matplotlib", "pandas")
"""What its runs import (the ``implicit-bias`` extra installs them)."""


def preflight(cfg: ImplicitBiasConfig) -> None:
    """Fail before any run directory exists when the dataset's files are missing."""
    check_dataset_available(cfg)


def run_batch(cfgs: list[ImplicitBiasConfig], ctxs: list[RunContext]) -> list[Any]:
    """Compatible runs trained as one batched computation (:mod:`.batched`)."""
    from sweeplab.studies.implicit_bias.batched import run_batch as batched

    return batched(cfgs, ctxs)


@register_study(
    "implicit-bias",
    config=ImplicitBiasConfig,
    preflight=preflight,
    grid_defaults={"plots": False},
    batch_key=batch_key,
    run_batch=run_batch,
    summary_keys=("loss", "train_acc", "test_acc", "angle_svm", "angle_logreg",
                  "angle_lp_max_margin", "angle_linear_md", "margin_l2", "margin_p",
                  "margin_p_ratio", "align_min", "rank1_min", "balance_drift_max"),
    warm=(RUNNER, BATCHED),
    analysis=ANALYSIS,
    dialect=FLAT_SPEC,
    extra="sweeplab[implicit-bias]",
    requires=REQUIRES,
    cost=run_cost,
)
def run(cfg: ImplicitBiasConfig, ctx: RunContext) -> dict[str, float]:
    """Mirror descent on a deep linear network: angles, margins, alignment, balance."""
    from sweeplab.studies.implicit_bias.runner import run_one

    return run_one(cfg, ctx)
