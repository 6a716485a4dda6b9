"""Cached baselines equal freshly solved ones bit for bit (issue 17).

A run reads its baselines from sweeplab.core.cache when the same data and settings were
solved before; the directions, the separability flag and the warnings must then be
exactly what solving gives, for separable and non-separable data and for the batched
path's two-step solve (``compute_baselines(p=None)`` then ``lp_max_margin_after``).
"""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.studies.implicit_bias.baselines import compute_baselines
from sweeplab.studies.implicit_bias.shared_baselines import lp_max_margin_after


def separable_data(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points labelled by a random hyperplane through 0, a slab of width 0.3 out."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    X = rng.standard_normal((4 * n, d))
    s = X @ (u / np.linalg.norm(u))
    keep = np.abs(s) > 0.3
    return X[keep][:n], np.sign(s[keep][:n])


def overlapping_gaussians(seed: int, n: int = 400, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two unit Gaussians a little apart: not separable through the origin."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return rng.standard_normal((n, d)) + 0.3 * y[:, None], y


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same(a, b) -> None:
    assert a.separable == b.separable and a.p == b.p and a.warnings == b.warnings
    for name in ("svm", "logreg", "lp_max_margin"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


@pytest.mark.parametrize("p", [1.5, 3.0, None])
def test_cached_baselines_equal_fresh_ones_bit_for_bit(fresh_cache, p):
    X, y = separable_data(seed=3, n=120, d=6)
    fresh = compute_baselines(X, y, p=p, logreg_C=0.5, seed=2, use_cache=False)
    stored = compute_baselines(X, y, p=p, logreg_C=0.5, seed=2)   # solves and stores
    assert len(list(fresh_cache.rglob("*.npz"))) == 1
    read = compute_baselines(X, y, p=p, logreg_C=0.5, seed=2)     # reads back
    _same(fresh, stored)
    _same(fresh, read)
    assert fresh.separable and fresh.svm is not None


def test_non_separable_data_caches_its_warnings():
    X, y = overlapping_gaussians(seed=1)
    fresh = compute_baselines(X, y, p=1.5, use_cache=False)
    compute_baselines(X, y, p=1.5)
    read = compute_baselines(X, y, p=1.5)
    assert not read.separable and read.svm is None and read.warnings
    _same(fresh, read)


def test_other_data_or_settings_are_other_entries(fresh_cache):
    X, y = separable_data(seed=4, n=80, d=4)
    compute_baselines(X, y, p=1.5)
    compute_baselines(X, y, p=2.5)
    compute_baselines(X, y, p=1.5, logreg_C=2.0)
    X2 = X.copy()
    X2[0, 0] = np.nextafter(X2[0, 0], np.inf)
    compute_baselines(X2, y, p=1.5)
    assert len(list(fresh_cache.rglob("*.npz"))) == 4


def test_the_batched_two_step_solve_reads_back_bit_for_bit():
    X, y = separable_data(seed=5, n=100, d=5)
    base = compute_baselines(X, y, p=None)
    fresh = lp_max_margin_after(base, X, y, 1.7)
    read = lp_max_margin_after(compute_baselines(X, y, p=None), X, y, 1.7)
    assert fresh[1] == read[1]
    assert fresh[0].tobytes() == read[0].tobytes()
    alone = compute_baselines(X, y, p=1.7, use_cache=False)
    assert np.array_equal(alone.lp_max_margin, read[0])
