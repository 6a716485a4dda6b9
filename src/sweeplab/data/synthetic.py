"""Two isotropic Gaussian classes: the simplest linearly separable(-ish) benchmark.

Model: draw a unit direction ``u`` (a standard normal vector, normalised: uniform on the
sphere), then for label ``y`` in {-1, +1}

    x = y * (separation / 2) * u + noise * z,    z ~ N(0, I_d),

so the class means are ``+-(separation/2) u``, a distance ``separation`` apart, and the
Bayes-optimal classifier is ``sign(<u, x>)`` (equal priors, equal isotropic covariance;
e.g. Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", sec. 4.3).
Its error is ``Phi(-separation / (2 noise))``.

Everything comes from one ``numpy.random.default_rng(seed)`` stream, in a fixed order
(direction, training noise, test noise), so a seed fixes the whole data set.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["SyntheticSplits", "balanced_labels", "make_gaussians"]


class SyntheticSplits(NamedTuple):
    """Training and test sets (float64) and the direction ``u`` the means lie on."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    direction: np.ndarray


def balanced_labels(n: int) -> np.ndarray:
    """Labels -1, +1, -1, +1, ... (float64): the two classes differ in size by at most one."""
    return np.where(np.arange(n) % 2 == 0, -1.0, 1.0)


def _draw(
    rng: np.random.Generator, u: np.ndarray, n: int, separation: float, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points of the two-Gaussian model along ``u``, with balanced labels."""
    y = balanced_labels(n)
    X = np.outer(y, (separation / 2.0) * u) + noise * rng.standard_normal((n, u.shape[0]))
    return X, y


def make_gaussians(
    n_samples: int, input_dim: int, separation: float, noise: float, seed: int
) -> SyntheticSplits:
    """Draw ``n_samples`` training and ``n_samples`` independent test points (see module).

    Labels alternate -1, +1 so the classes are balanced (exactly, for even ``n_samples``).
    The test set comes from the same distribution, drawn after the training set from the
    same generator, hence independent of it.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(input_dim)
    u /= np.linalg.norm(u)
    X, y = _draw(rng, u, n_samples, separation, noise)
    X_test, y_test = _draw(rng, u, n_samples, separation, noise)
    return SyntheticSplits(X, y, X_test, y_test, u)
