"""Where the loss along each direction first exceeds a cutoff: the whole grid, or coarse to fine.

The radius of a minimum along a direction (Fan, Sandlund & Ko 2025, "Sharp Minima Can
Generalize: A Loss Landscape Perspective On Data", arXiv 2511.04808, Sec. 3) is the first
grid coefficient whose loss exceeds the cutoff. :func:`first_crossings` reads it off an
exhaustive grid (:func:`~sweeplab.studies.volume.landscape.scan_grid`);
:func:`coarse_to_fine` finds the same index from a coarse pass and short scans between
coarse points, evaluating a fraction of the grid (``benchmarks/bench_volume.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from sweeplab.studies.volume.landscape import (
    DEFAULT_MEMORY_BUDGET,
    FINE_BLOCK,
    LandscapeData,
    _coefficients,
    _evaluate_points,
    _FirstLayerCache,
    _scan,
)

__all__ = ["CrossingSearch", "coarse_to_fine", "first_crossings"]


@dataclass(frozen=True)
class CrossingSearch:
    """Result of :func:`coarse_to_fine`.

    ``index`` (Q, K, S): first grid index whose loss exceeds cutoff q along direction k
    on landscape s, -1 when no coarse point exceeds it; ``coarse_index`` (Cc,): the grid
    indices of the coarse pass; ``coarse_loss``/``coarse_acc`` (K, Cc, S) on them;
    ``n_evaluated``: points evaluated in all; ``n_grid``: K·C, those of the full grid.
    """

    index: np.ndarray
    coarse_index: np.ndarray
    coarse_loss: np.ndarray
    coarse_acc: np.ndarray
    n_evaluated: int
    n_grid: int


def _cutoffs(cutoffs: Sequence[float] | np.ndarray) -> np.ndarray:
    q = np.atleast_1d(np.asarray(cutoffs, dtype=np.float64))
    if q.ndim != 1 or q.size == 0:
        raise ValueError("cutoffs must be a non-empty 1-D sequence of losses")
    return q


def _exceeds(loss: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """(Q, ...) whether ``loss`` exceeds each cutoff; a NaN loss (a blown-up model) does."""
    q = cutoffs.reshape((-1,) + (1,) * loss.ndim)
    return ~(loss[None] <= q)


def first_crossings(
    loss: np.ndarray | Tensor, cutoffs: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Index (Q, K, S) of the first coefficient whose loss (K, C, S) is > each cutoff; -1 if none.

    A NaN loss counts as exceeding every cutoff.
    """
    arr = np.asarray(torch.as_tensor(loss).detach().cpu(), dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"loss must be (K, C, S), got shape {arr.shape}")
    exceed = _exceeds(arr, _cutoffs(cutoffs))  # (Q, K, C, S)
    first = exceed.argmax(axis=2)
    return np.where(exceed.any(axis=2), first, -1).astype(np.int64)


def coarse_to_fine(
    model: nn.Module,
    theta: Tensor,
    D: Tensor,
    coefficients: Sequence[float] | Tensor | np.ndarray,
    data: LandscapeData,
    cutoffs: Sequence[float] | np.ndarray,
    stride: int,
    block: int | None = FINE_BLOCK,
    max_batch: int | None = None,
    memory_budget: int | None = None,
) -> CrossingSearch:
    """First grid index where the loss exceeds each cutoff, searched coarse then fine.

    1. Coarse pass: grid indices 0, stride, 2·stride, ... and always the last, C-1, for
       every direction.
    2. For each (cutoff q, direction k, size s), ``j`` = the first coarse index whose
       loss exceeds q (none: the answer is -1). The answer is the first grid index
       strictly between the previous coarse index and ``j`` whose loss exceeds q, or
       ``j`` itself if none does. The indices of these windows are evaluated left to
       right, ``block`` per window per round (the union over q and s per direction, in
       one batched call per round), and a window stops once each of its (q, s) has its
       answer: the answer is the one evaluating the whole window would give, for fewer
       points. ``block=None`` evaluates every window whole in a single round.

    This equals ``first_crossings(scan_grid(...))`` whenever the loss along each
    direction does not rise above the cutoff and fall back below it between two coarse
    points before the first coarse crossing: true for the monotone rise typical along a
    ray from a minimum, not guaranteed for a landscape with bumps narrower than a stride.
    The tests check the agreement on a trained network. ``max_batch`` and
    ``memory_budget`` as in :func:`evaluate_points`.
    """
    if int(stride) < 1:
        raise ValueError(f"stride={stride}: must be a positive integer")
    if block is not None and int(block) < 1:
        raise ValueError(f"block={block}: must be a positive integer or None")
    coef, cut = _coefficients(coefficients), _cutoffs(cutoffs)
    n_dir, n_coef, n_size = D.shape[0], coef.size, len(data.sizes)
    # first-layer products are shared by the coarse pass and every fine round
    cache = _FirstLayerCache(DEFAULT_MEMORY_BUDGET)
    coarse = np.unique(np.r_[np.arange(0, n_coef, int(stride)), n_coef - 1])
    c_loss, c_acc = _scan(model, theta, D, coef[coarse], data, max_batch, memory_budget, cache)
    jc = first_crossings(c_loss, cut)  # (Q, K, S), positions in ``coarse``

    full = np.full((n_dir, n_coef, n_size), np.nan)
    evaluated = np.zeros((n_dir, n_coef), dtype=bool)
    full[:, coarse], evaluated[:, coarse] = c_loss, True
    # each (q, k, s) with jc > 0 scans its window (lo, hi) from ``nxt`` on
    hi = np.where(jc >= 0, coarse[np.maximum(jc, 0)], -1)
    index = hi.copy()  # the answer when nothing in the window exceeds (and for jc <= 0)
    nxt = np.where(jc > 0, coarse[np.maximum(jc - 1, 0)], 0) + 1
    active = (jc > 0) & (nxt < hi)
    step = int(block) if block is not None else n_coef
    n_fine = 0
    while active.any():
        todo = list(zip(*np.nonzero(active)))
        needed = np.zeros((n_dir, n_coef), dtype=bool)
        for q, kk, s in todo:
            needed[kk, nxt[q, kk, s]:min(nxt[q, kk, s] + step, hi[q, kk, s])] = True
        k_f, i_f = np.nonzero(needed & ~evaluated)
        if k_f.size:
            f_loss, _ = _evaluate_points(model, theta, D, k_f, coef[i_f], data, max_batch,
                                         memory_budget, cache)
            full[k_f, i_f], evaluated[k_f, i_f] = f_loss, True
            n_fine += int(k_f.size)
        for q, kk, s in todo:
            lo_i, hi_i = nxt[q, kk, s], min(nxt[q, kk, s] + step, hi[q, kk, s])
            over = ~(full[kk, lo_i:hi_i, s] <= cut[q])  # NaN counts as exceeding
            if over.any():
                index[q, kk, s] = lo_i + int(np.argmax(over))
                active[q, kk, s] = False
            else:
                nxt[q, kk, s] = hi_i
                active[q, kk, s] = hi_i < hi[q, kk, s]
    return CrossingSearch(
        index=index.astype(np.int64),
        coarse_index=coarse.astype(np.int64),
        coarse_loss=c_loss,
        coarse_acc=c_acc,
        n_evaluated=int(n_dir * coarse.size + n_fine),
        n_grid=int(n_dir * n_coef),
    )
