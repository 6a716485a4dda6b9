"""The registered anchor studies: ``anchor-composite`` and ``inverse-sequence``.

Reimplementation of the experiments of Chen, Lin, Wang, Xu, "Achilles' Heel of Mamba:
Essential difficulties of the Mamba architecture demonstrated by synthetic data"
(NeurIPS 2025, arXiv 2509.17514), App. C: a model (``model_type``) trained on one task,
evaluated every ``log_interval`` epochs. Besides the framework's files a run writes
``model.pt`` (the trained weights), ``metrics.json`` (the final metrics) and ``train.log``,
a relative link to the framework's ``logs/train.log`` (the layout the paper's code uses).

- ``anchor-composite`` (App. C.1): train loss and accuracy, test accuracy on the seen
  pairs, and on the held-out pair (4, 3) ``composite_acc`` (against key - 10, the
  compositional solution) and ``symmetric_acc`` (against key - 6, the symmetric one).
- ``inverse-sequence`` (App. C.2): train, test and out-of-distribution accuracy.

Runs of equal :func:`.batch_keys.batch_key` (the seeds and gammas of one depth, ...) train
as one batched computation (``sweeplab grid --batch auto``, the default; :mod:`.batched`).
"""

from __future__ import annotations

from typing import Any

from sweeplab.core.context import RunContext
from sweeplab.core.registry import register_study
from sweeplab.studies.anchor.batch_keys import batch_key
from sweeplab.studies.anchor.config import AnchorTrainingConfig, CompositeConfig, InverseConfig

RUNNER = "sweeplab.studies.anchor.runner"
REQUIRES = ("torch", "matplotlib", "pandas")
"""What its runs import (the ``anchor`` extra installs them)."""


def preflight(cfg: AnchorTrainingConfig) -> None:
    """``device: cuda`` where there is no CUDA device is refused before any run directory
    exists (torch is imported for this check only)."""
    if cfg.device == "cuda":
        from sweeplab.studies.anchor.train import resolve_device

        resolve_device(cfg.device)


def run_composite_batch(cfgs: list[CompositeConfig], ctxs: list[RunContext]) -> list[Any]:
    """Composite-task runs of one batch key trained together (:mod:`.batched`)."""
    from sweeplab.studies.anchor.runner import run_composite_batch as run

    return run(cfgs, ctxs)


def run_inverse_batch(cfgs: list[InverseConfig], ctxs: list[RunContext]) -> list[Any]:
    """Inverse-task runs of one batch key trained together (:mod:`.batched`)."""
    from sweeplab.studies.anchor.runner import run_inverse_batch as run

    return run(cfgs, ctxs)


@register_study("anchor-composite", config=CompositeConfig, preflight=preflight,
                summary_keys=("train_loss", "train_acc", "test_acc", "composite_acc",
                              "symmetric_acc"), warm=(RUNNER,),
                analysis="sweeplab.studies.anchor.analysis:COMPOSITE_ANALYSIS",
                extra="sweeplab[anchor]", requires=REQUIRES,
                batch_key=batch_key, run_batch=run_composite_batch)
def run_composite(cfg: CompositeConfig, ctx: RunContext) -> dict[str, float]:
    """Anchor-function composite task: composite vs symmetric solution of pair (4, 3)."""
    from sweeplab.studies.anchor.runner import run_composite as run

    return run(cfg, ctx)


@register_study("inverse-sequence", config=InverseConfig, preflight=preflight,
                summary_keys=("train_loss", "train_acc", "test_acc", "ood_acc"),
                warm=(RUNNER,), analysis="sweeplab.studies.anchor.analysis_inverse:ANALYSIS",
                extra="sweeplab[anchor]", requires=REQUIRES,
                batch_key=batch_key, run_batch=run_inverse_batch)
def run_inverse(cfg: InverseConfig, ctx: RunContext) -> dict[str, float]:
    """Inverse sequence matching: find the key whose reversal is the query."""
    from sweeplab.studies.anchor.runner import run_inverse as run

    return run(cfg, ctx)
