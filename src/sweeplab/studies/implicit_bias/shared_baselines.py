"""Baselines for a batch of runs, each distinct one computed once.

A run's baselines (``baselines.compute_baselines``) depend on less than its config:

- separability, the l2 SVM and logistic regression on the data and ``logreg_C`` only
  (logistic regression's lbfgs solver ignores ``random_state``, which scikit-learn uses
  only for the sag, saga and liblinear solvers, so the seed does not matter);
- the lp max-margin direction on those and the potential's ``margin_p``;
- the linear MD direction (L = 1 from w = 0) on the data, the potential (with its
  parameter), lr, loss, epochs and dtype.

:func:`lp_max_margin_after` finishes what ``compute_baselines(X, y, p=None)`` left out,
exactly as ``compute_baselines(X, y, p)`` would have computed it (same seed direction
for the working set, same warning), so the directions and warnings of a run are the
ones it gets alone. :func:`linear_md_directions` trains every distinct linear problem
of a batch together (:class:`~sweeplab.studies.implicit_bias.batched_train.BatchedMirrorDescent`
with L = 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sweeplab.errors import NonFiniteError
from sweeplab.studies.implicit_bias.baselines import (
    _EXACT_SEED_PER_DIM,
    _MM_SEED_C,
    _MM_SEED_ITER,
    _ROUGH_SEED_PER_DIM,
    Baselines,
    BaselineSolverError,
    _check_p,
    _lp_max_margin,
    _scaled_margins_matrix,
    _seed_direction,
)
from sweeplab.studies.implicit_bias.batched_train import BatchedMirrorDescent
from sweeplab.studies.implicit_bias.potentials import Potential


def lp_max_margin_after(
    base: Baselines, X: np.ndarray, y: np.ndarray, p: float
) -> tuple[np.ndarray | None, list[str]]:
    """The lp max-margin direction and its warnings, given ``compute_baselines(p=None)``.

    None on data that is not separable (``base`` already warned about it) and, with a
    warning, when the solver fails; the working set is seeded by the SVM when there is
    one, else by a rough linear SVM, as in ``compute_baselines``.
    """
    if not base.separable:
        return None, []
    pf = _check_p(p)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    from sweeplab.studies.implicit_bias import baseline_cache

    svm_part = "none" if base.svm is None else base.svm.tobytes().hex()
    key = baseline_cache.key("lp_max_margin_after", X, y, p=pf, svm=svm_part)
    hit = baseline_cache.load(key)
    if hit is not None:
        arrays, meta = hit
        return arrays.get("lp_max_margin"), list(meta["warnings"])
    lp, notes = _solve_lp_after(base, X, y, pf)
    baseline_cache.store(key, {"lp_max_margin": lp}, {"warnings": notes})
    return lp, notes


def _solve_lp_after(base: Baselines, X: np.ndarray, y: np.ndarray,
                    pf: float) -> tuple[np.ndarray | None, list[str]]:
    """:func:`lp_max_margin_after` on checked input, without the cache."""
    Z, s = _scaled_margins_matrix(X, y)
    if base.svm is not None:
        start, per_dim = base.svm, _EXACT_SEED_PER_DIM
    else:
        start = _seed_direction(X / s, y, C=_MM_SEED_C, max_iter=_MM_SEED_ITER)
        per_dim = _ROUGH_SEED_PER_DIM
    try:
        return _lp_max_margin(Z, pf, start, per_dim) / s, []
    except BaselineSolverError as exc:
        return None, [f"l{pf:g} max-margin baseline unavailable: {exc}"]


def linear_md_directions(
    data_ids: Sequence[int],
    X: Sequence[np.ndarray],
    y: Sequence[np.ndarray],
    potentials: Sequence[Potential],
    lrs: Sequence[float],
    loss: str,
    epochs: int,
    dtype: torch.dtype,
) -> list[np.ndarray | NonFiniteError]:
    """The L = 1 mirror-descent solutions from w = 0 of problems b, trained together.

    Problem b trains on ``X[data_ids[b]], y[data_ids[b]]`` with ``potentials[b]`` and
    ``lrs[b]`` for ``epochs`` full-batch epochs (``study.linear_md_direction``). Returns
    each end-to-end vector (float64), or the :class:`NonFiniteError` its loss raised.
    """
    d = np.asarray(X[0]).shape[1]
    order = sorted(range(len(data_ids)), key=lambda b: data_ids[b])  # same data adjacent
    zeros = [[torch.zeros(1, d, dtype=dtype)] for _ in order]
    engine = BatchedMirrorDescent(
        zeros, [data_ids[b] for b in order], X, y, [lrs[b] for b in order],
        [potentials[b] for b in order], loss,
    )
    out: list[np.ndarray | NonFiniteError] = [None] * len(order)  # type: ignore[list-item]
    active = list(order)
    for epoch in range(epochs):
        finite = engine.step().tolist()
        if not all(finite):
            for b, ok in zip(active, finite):
                if not ok:
                    out[b] = NonFiniteError("training loss", epoch)
            keep = [row for row, ok in enumerate(finite) if ok]
            active = [active[row] for row in keep]
            if not active:
                return out
            engine.select(keep)
    w = engine.end_to_end().to(torch.float64).numpy()
    for row, b in enumerate(active):
        out[b] = w[row].copy()
    return out
