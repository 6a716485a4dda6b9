"""Two-Gaussian data: balance, seeding, the geometry the model promises."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.data.synthetic import balanced_labels, make_gaussians


@pytest.mark.parametrize("n", [2, 7, 512])
def test_classes_are_balanced(n: int):
    """Labels are -1/+1 and the class sizes differ by at most one (none for even n)."""
    s = make_gaussians(n, 3, 2.0, 0.5, seed=0)
    for y in (s.y, s.y_test):
        assert set(np.unique(y)) == {-1.0, 1.0} and y.dtype == np.float64
        assert abs(int(np.sum(y == 1.0)) - int(np.sum(y == -1.0))) == n % 2
    assert s.X.shape == s.X_test.shape == (n, 3)
    np.testing.assert_array_equal(balanced_labels(4), [-1.0, 1.0, -1.0, 1.0])


def test_seed_reproduces_and_another_seed_differs():
    """Same seed: identical arrays; another seed: another direction and other points."""
    a, b = make_gaussians(50, 5, 3.0, 0.2, seed=4), make_gaussians(50, 5, 3.0, 0.2, seed=4)
    c = make_gaussians(50, 5, 3.0, 0.2, seed=5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.direction, c.direction)
    assert not np.allclose(a.X, c.X)


def test_test_set_is_a_fresh_draw():
    """Train and test come from the same law but are different samples."""
    s = make_gaussians(100, 4, 3.0, 0.5, seed=0)
    assert not np.allclose(s.X, s.X_test)
    np.testing.assert_array_equal(s.y, s.y_test)


def test_means_and_noise_match_the_model():
    """Class means are +-(separation/2) u with |u| = 1; residual std is the noise level."""
    sep, noise, n, d = 4.0, 0.3, 20000, 3
    s = make_gaussians(n, d, sep, noise, seed=1)
    u = s.direction
    assert np.linalg.norm(u) == pytest.approx(1.0)
    tol = 5 * noise / np.sqrt(n / 2)  # five standard errors of a class mean
    np.testing.assert_allclose(s.X[s.y == 1].mean(axis=0), sep / 2 * u, atol=tol)
    np.testing.assert_allclose(s.X[s.y == -1].mean(axis=0), -sep / 2 * u, atol=tol)
    residual = s.X - np.outer(s.y, sep / 2 * u)
    np.testing.assert_allclose(residual.std(axis=0), noise, rtol=0.03)


def test_large_separation_is_separable_along_u():
    """With separation 10 and noise 0.1 the Bayes rule sign(<u, x>) makes no mistake."""
    s = make_gaussians(1000, 10, 10.0, 0.1, seed=2)
    np.testing.assert_array_equal(np.sign(s.X @ s.direction), s.y)
    np.testing.assert_array_equal(np.sign(s.X_test @ s.direction), s.y_test)


def test_zero_noise_puts_every_point_on_its_mean():
    """noise=0 (allowed by the config) gives exactly the two means."""
    s = make_gaussians(6, 2, 2.0, 0.0, seed=0)
    np.testing.assert_allclose(s.X, np.outer(s.y, s.direction))
