"""Rank statistics the minima-volume analysis shares."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rank correlation and its p-value; NaN when undefined (n < 3, constant)."""
    if len(x) < 3:
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)
