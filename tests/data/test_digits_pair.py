"""scikit-learn digits as a two-class task: labels, split, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sweeplab.data.digits import load_digits_pair
from sweeplab.errors import ConfigError


@pytest.fixture(scope="module")
def bunch():
    """The full bundled digits data (1797 x 64)."""
    return load_digits()


def test_shapes_labels_and_pixel_scale(bunch):
    """64 features in [0, 1] equal to pixels/16; labels exactly {-1, +1} by the pair rule."""
    s = load_digits_pair((3, 8), seed=0)
    n_pair = int(np.isin(bunch.target, [3, 8]).sum())
    assert s.X.shape == (s.index.size, 64) and s.X_test.shape == (s.index_test.size, 64)
    assert s.X.shape[0] + s.X_test.shape[0] == n_pair
    assert s.X.dtype == s.X_test.dtype == s.y.dtype == np.float64
    assert set(np.unique(s.y)) == set(np.unique(s.y_test)) == {-1.0, 1.0}
    np.testing.assert_array_equal(s.y, np.where(bunch.target[s.index] == 3, -1.0, 1.0))
    np.testing.assert_array_equal(s.y_test, np.where(bunch.target[s.index_test] == 3, -1.0, 1.0))
    np.testing.assert_array_equal(s.X, bunch.data[s.index] / 16.0)
    assert 0.0 <= s.X.min() and s.X.max() <= 1.0


def test_split_is_disjoint_complete_stratified_and_a_quarter(bunch):
    """Train and test share no sample, cover the pair, and keep class shares (25% test)."""
    s = load_digits_pair((1, 7), seed=3)
    assert np.intersect1d(s.index, s.index_test).size == 0
    pair_rows = np.flatnonzero(np.isin(bunch.target, [1, 7]))
    np.testing.assert_array_equal(np.sort(np.concatenate([s.index, s.index_test])), pair_rows)
    n = pair_rows.size
    assert abs(s.index_test.size - 0.25 * n) <= 1
    for label in (-1.0, 1.0):
        share_all = np.mean(np.concatenate([s.y, s.y_test]) == label)
        assert abs(np.mean(s.y_test == label) - share_all) < 0.02


def test_seed_fixes_the_split():
    """Same seed: same split; another seed: another split."""
    a, b = load_digits_pair((0, 6), seed=11), load_digits_pair((0, 6), seed=11)
    c = load_digits_pair((0, 6), seed=12)
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(np.sort(a.index), np.sort(c.index))


def test_pair_order_flips_labels_only():
    """(a, b) and (b, a) with the same seed: same samples, opposite labels."""
    ab, ba = load_digits_pair((2, 9), seed=0), load_digits_pair((9, 2), seed=0)
    np.testing.assert_array_equal(ab.index, ba.index)
    np.testing.assert_array_equal(ab.index_test, ba.index_test)
    lab_ab = dict(zip(ab.index.tolist(), ab.y.tolist(), strict=True))
    lab_ba = dict(zip(ba.index.tolist(), ba.y.tolist(), strict=True))
    assert all(lab_ab[i] == -lab_ba[i] for i in lab_ab)


def test_negative_seed_is_accepted_deterministically():
    """scikit-learn refuses negative random_state; the loader maps seeds into its range."""
    a, b = load_digits_pair((4, 5), seed=-1), load_digits_pair((4, 5), seed=-1)
    np.testing.assert_array_equal(a.index, b.index)


def test_missing_class_is_a_digits_error(monkeypatch):
    """A class that is not in the data is a ConfigError on key digits."""
    import sweeplab.data.digits as mod

    real = mod.load_digits

    def without_sevens():
        b = real()
        keep = b.target != 7
        b.data, b.target = b.data[keep], b.target[keep]
        return b

    monkeypatch.setattr(mod, "load_digits", without_sevens)
    with pytest.raises(ConfigError, match="class 7 has no sample") as info:
        load_digits_pair((1, 7), seed=0)
    assert info.value.key == "digits"
