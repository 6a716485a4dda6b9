"""The Student-t interval of a mean: scipy.stats' t quantile to the bit, NaN below two."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sweeplab.analysis.stats import t_interval


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_the_interval_is_scipy_stats_t_to_the_bit(confidence):
    n = np.arange(2, 2002, dtype=np.float64)
    mean, std = np.linspace(-3.0, 3.0, n.size), np.linspace(0.01, 5.0, n.size)
    low, high = t_interval(mean, std, n, confidence)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * std / np.sqrt(n)
    np.testing.assert_array_equal(low, mean - half)
    np.testing.assert_array_equal(high, mean + half)


def test_fewer_than_two_values_give_nan_and_scalars_broadcast():
    low, high = t_interval([1.0, 2.0, 3.0], 0.5, [0, 1, 5])
    assert np.isnan(low[:2]).all() and np.isnan(high[:2]).all()
    assert low[2] < 3.0 < high[2]
    low, high = t_interval(0.0, 1.0, 4)
    # t_{0.975, 3} = 3.1824 (any table of Student's t), over sqrt(4)
    assert low.shape == () and float(high) == -float(low) == pytest.approx(3.1824 / 2, abs=1e-4)
