"""A rough guess of what one implicit-bias run costs: :func:`run_cost`.

Light on purpose (no torch): a grid's driver calls it for every run to do when it
chooses where the grid runs (:mod:`sweeplab.execute.choose`). It is a hint, not a
measurement, and errs high: about half a second of baselines (SVM, logistic regression,
the lp max-margin problem) and bookkeeping per run, ~0.1 ms per epoch and layer of
full-batch training on a small synthetic set (issue 17 measured 0.11 s for 1000 epochs
at L = 2), and a few seconds of loading and projecting a real dataset.
"""

from __future__ import annotations

from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig

BASE_S = 0.5
EPOCH_LAYER_S = 1e-4
REAL_DATA_S = 2.0


def run_cost(cfg: ImplicitBiasConfig) -> float:
    """Expected seconds of one run of ``cfg`` in a warm process (imports already paid)."""
    data = 0.0 if cfg.dataset == "synthetic" else REAL_DATA_S
    return BASE_S + data + EPOCH_LAYER_S * cfg.epochs * cfg.L
