"""Radii, log-volumes and cutoff sizes of a minimum, from the crossings along directions.

Fan, Sandlund & Ko (2025), "Sharp Minima Can Generalize: A Loss Landscape Perspective
On Data", arXiv 2511.04808, Sec. 3: the region around a minimum θ where the loss stays
below a cutoff is treated as star-shaped about θ. Along direction ``d_i`` its radius is
``r_i = c_i · ||d_i||``, ``c_i`` the first grid coefficient where ``L(θ + c·d_i)``
exceeds the cutoff. A star-shaped region in n dimensions has volume
``V_n · E_u[r(u)^n]`` (u uniform on the unit sphere, ``V_n`` the unit ball's volume:
integrate ``r^(n-1) dr`` in polar coordinates), so with K directions

    log V ≈ log( (1/K) Σ_i r_i^n ) = logsumexp_i(n · log r_i) − log K,

dropping the constant ``log V_n``, which is the same for every model of one
architecture. For n in the thousands ``r^n`` over- or underflows float64, so the sum is
taken by log-sum-exp.

Directions that never cross within the coefficient range are counted (``n_uncrossed``)
and treated by one of two rules (``uncrossed``):

- ``lower_bound``: their radius is the range end, which makes the estimate a lower bound
  on the one a longer range would give;
- ``drop``: they are left out, the mean runs over the K' directions that crossed (the
  authors' ``wiggle_threshold_radii`` and ``compute_log_power_mean``,
  ``minima_volume/volume_funcs.py``); with none crossed the estimate is undefined (NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import logsumexp

__all__ = ["UNCROSSED", "cutoff_size", "first_crossing_size", "log_volume", "prefix_means",
           "radii", "volume_table"]

UNCROSSED = ("lower_bound", "drop")
"""How directions that never cross a cutoff enter the volume (see the module docstring)."""


def radii(
    index: np.ndarray, coefficients: Sequence[float] | np.ndarray,
    direction_norms: Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Radius (..., K, S) float64 of each crossing, and whether it crossed at all.

    ``index`` (..., K, S): first grid index exceeding the cutoff, -1 for none;
    ``coefficients`` (C,); ``direction_norms`` (K,) the Euclidean norms ``||d_k||``.
    ``r = coefficients[index] · ||d_k||``; for index -1 the range end
    ``coefficients[-1] · ||d_k||`` (a lower bound on the true radius) with crossed False.
    """
    idx = np.asarray(index)
    coef = np.asarray(coefficients, dtype=np.float64).reshape(-1)
    norms = np.asarray(direction_norms, dtype=np.float64).reshape(-1)
    if idx.ndim < 2 or idx.shape[-2] != norms.size:
        raise ValueError(
            f"index of shape {idx.shape} is not (..., K, S) for K={norms.size} directions"
        )
    if np.any(idx < -1) or np.any(idx >= coef.size):
        raise ValueError(f"index entries must lie in -1..{coef.size - 1}")
    crossed = idx >= 0
    r = coef[np.where(crossed, idx, coef.size - 1)] * norms[:, None]
    return r, crossed


def log_volume(radii: Sequence[float] | np.ndarray, n_params: int) -> float:
    """``logsumexp(n · log r) − log K``: log of the mean of ``r_i^n`` over K directions.

    Exact in float64 where ``r^n`` itself overflows or underflows. A zero radius adds
    ``exp(-inf) = 0`` to the mean; all zero gives ``-inf``.
    """
    r = np.asarray(radii, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ValueError("log_volume needs at least one radius")
    if np.any(r < 0) or np.any(np.isnan(r)):
        raise ValueError("radii must be non-negative numbers")
    if int(n_params) < 1:
        raise ValueError(f"n_params={n_params}: must be a positive integer")
    if not np.any(r > 0):
        return float("-inf")
    with np.errstate(divide="ignore"):
        terms = int(n_params) * np.log(r)
    return float(logsumexp(terms) - np.log(r.size))


def volume_table(
    index: np.ndarray,
    coefficients: Sequence[float] | np.ndarray,
    direction_norms: Sequence[float] | np.ndarray,
    n_params: int,
    cutoffs: Sequence[float],
    sizes: Sequence[int],
    uncrossed: str = "lower_bound",
) -> list[dict]:
    """One row per (cutoff, landscape size) from crossings ``index`` (Q, K, S).

    Each row: ``cutoff``, ``landscape_size``, ``log_volume``, ``n_directions`` (K),
    ``n_uncrossed`` (directions never exceeding the cutoff in range), ``n_used``
    (directions in the mean: K, or K - n_uncrossed with ``uncrossed="drop"``),
    ``lower_bound`` (True when uncrossed radii entered as the range end),
    ``mean_radius``, ``min_radius``, ``max_radius`` (over the radii used; NaN if none).
    """
    if uncrossed not in UNCROSSED:
        raise ValueError(f"uncrossed={uncrossed!r}: allowed values are {', '.join(UNCROSSED)}")
    idx = np.asarray(index)
    if idx.ndim != 3 or idx.shape[0] != len(cutoffs) or idx.shape[2] != len(sizes):
        raise ValueError(
            f"index of shape {idx.shape} is not (Q={len(cutoffs)}, K, S={len(sizes)})"
        )
    r, crossed = radii(idx, coefficients, direction_norms)
    rows = []
    for q, cutoff in enumerate(cutoffs):
        for s, size in enumerate(sizes):
            short = int((~crossed[q, :, s]).sum())
            used = r[q, crossed[q, :, s], s] if uncrossed == "drop" else r[q, :, s]
            rows.append({
                "cutoff": float(cutoff),
                "landscape_size": int(size),
                "log_volume": log_volume(used, n_params) if used.size else float("nan"),
                "n_directions": int(r.shape[1]),
                "n_uncrossed": short,
                "n_used": int(used.size),
                "lower_bound": uncrossed == "lower_bound" and short > 0,
                "mean_radius": float(used.mean()) if used.size else float("nan"),
                "min_radius": float(used.min()) if used.size else float("nan"),
                "max_radius": float(used.max()) if used.size else float("nan"),
            })
    return rows


def prefix_means(per_sample_loss: Sequence[float] | np.ndarray) -> np.ndarray:
    """The cumulative mean loss (N,) float64: entry ``s - 1`` is the mean of the first ``s``.

    ``per_sample_loss`` (N,) is the unperturbed model's loss on the ordered pool, so entry
    ``s - 1`` is the minimum's own loss on the landscape of size ``s`` (Fan, Sandlund & Ko
    2025, arXiv 2511.04808, Sec. 3: a landscape is the mean loss over a dataset).
    """
    loss = np.asarray(per_sample_loss, dtype=np.float64).reshape(-1)
    return np.cumsum(loss) / np.arange(1, loss.size + 1)


def cutoff_size(per_sample_loss: Sequence[float] | np.ndarray, cutoff: float) -> int | None:
    """The landscape size s (1-based) from which the cumulative mean loss stays > cutoff.

    ``per_sample_loss`` (N,) is the unperturbed model's loss on the ordered pool; the
    mean over the first s samples (:func:`prefix_means`) is the minimum's own loss on
    landscape s. From the returned size on, up to the whole pool, that loss is above the
    cutoff, so the volume is 0 ("volume 0 from there on"): θ itself lies outside the
    sublevel set, every radius is 0 and log V = -inf. A prefix mean that rises above the
    cutoff only briefly (a misfit sample among the first few) and falls back does not
    count (see :func:`first_crossing_size` for the first rise). None when the mean over
    the whole pool is at or below the cutoff.
    """
    mean = prefix_means(per_sample_loss)
    if mean.size == 0:
        return None
    below = np.flatnonzero(mean <= cutoff)  # a NaN loss counts as above, as in first_crossings
    if below.size == 0:
        return 1
    last_below = int(below[-1])
    return None if last_below == mean.size - 1 else last_below + 2


def first_crossing_size(
    per_sample_loss: Sequence[float] | np.ndarray, cutoff: float
) -> int | None:
    """The smallest landscape size s (1-based) whose cumulative mean loss exceeds ``cutoff``.

    The literal first crossing of the unperturbed loss curve (:func:`prefix_means`); it
    equals :func:`cutoff_size` when the curve, once above the cutoff, stays above, and is
    smaller when it rises above and falls back. None when no prefix mean exceeds it.
    """
    mean = prefix_means(per_sample_loss)
    above = np.flatnonzero(~(mean <= cutoff))  # NaN counts as above
    return int(above[0]) + 1 if above.size else None
