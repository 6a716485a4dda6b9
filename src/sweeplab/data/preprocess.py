"""Preprocessing fitted on the training set only: PCA, then per-feature z-scores.

Fitting on the training data alone and applying the same map to the test data keeps the
test set out of every statistic the model sees (no leakage): the test points are
transformed with the training mean, principal axes and standard deviations.

- PCA: scikit-learn's :class:`~sklearn.decomposition.PCA` with ``svd_solver="auto"``:
  for n >> d (every MNIST pair) that is the exact eigendecomposition of the d x d
  covariance (``covariance_eigh``, ~5x faster than a full SVD of the n x d matrix); for
  wide data a full SVD or, when few components of a large matrix are asked for, a
  randomized SVD whose ``random_state`` is derived from the seed. All paths are
  deterministic, and the sign ambiguity of each axis is removed by scikit-learn's
  ``svd_flip``. Projection: ``(x - mean) V_k`` with ``V_k`` the top-k principal axes
  (right singular vectors of the centred training matrix).
- Standardisation: ``(x - mean_j) / std_j`` per feature j, with the training mean and
  population std (ddof=0). A feature constant on the training set (std ~ 0, e.g. an
  always-black MNIST corner pixel) is only centred, never divided by zero.

scikit-learn (and with it scipy and pandas, over a second) is imported by :func:`fit_pca`
only: data without PCA, the default, never imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sweeplab.data.pairs import sklearn_seed
from sweeplab.errors import ConfigError

__all__ = ["fit_pca", "preprocess", "standardize"]

_CONSTANT_RTOL = 1e-12
"""A feature whose training std is below this times the data's scale counts as constant."""


def fit_pca(
    X: np.ndarray, X_test: np.ndarray | None, n_components: int, seed: int
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Project train (and test) onto the top ``n_components`` principal axes of train.

    Returns ``(X_pca, X_test_pca, explained)`` where ``explained`` is the sum of the
    explained-variance ratios of the kept components (share of training variance kept).
    Raises :class:`ConfigError` on key ``pca`` when more components are asked for than
    the training set has samples or features.
    """
    n, d = X.shape
    if n_components > min(n, d):
        raise ConfigError(
            "pca",
            n_components,
            f"at most min(n_train, dim) = min({n}, {d}) components can be fitted",
        )
    from sklearn.decomposition import PCA

    pca = PCA(n_components=n_components, svd_solver="auto", random_state=sklearn_seed(seed))
    X_pca = pca.fit_transform(X)
    X_test_pca = None if X_test is None else pca.transform(X_test)
    explained = float(np.sum(pca.explained_variance_ratio_))
    return X_pca.astype(np.float64), _as_f64(X_test_pca), explained


def standardize(
    X: np.ndarray, X_test: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """z-score every feature with the training mean and std (see module docstring).

    Returns ``(X_std, X_test_std, n_constant)`` where ``n_constant`` counts the features
    that were constant on the training set and so only centred.
    """
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    scale_ref = max(1.0, float(np.max(np.abs(X)))) if X.size else 1.0
    constant = std <= _CONSTANT_RTOL * scale_ref
    scale = np.where(constant, 1.0, std)
    X_std = (X - mean) / scale
    X_test_std = None if X_test is None else (X_test - mean) / scale
    return X_std, X_test_std, int(np.count_nonzero(constant))


def preprocess(
    X: np.ndarray,
    X_test: np.ndarray | None,
    pca: int | None,
    standardize_features: bool,
    seed: int,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """PCA (when ``pca`` is set) then standardisation (when asked), both fit on ``X``.

    Returns the transformed train and test arrays (float64) and a JSON-able record:
    ``pca``, ``explained_variance`` (sum of explained-variance ratios; None without PCA),
    ``standardize`` and ``n_constant_features``.
    """
    X = np.asarray(X, dtype=np.float64)
    X_test = _as_f64(X_test)
    meta: dict[str, Any] = {
        "pca": pca,
        "explained_variance": None,
        "standardize": standardize_features,
        "n_constant_features": None,
    }
    if pca is not None:
        X, X_test, meta["explained_variance"] = fit_pca(X, X_test, pca, seed)
    if standardize_features:
        X, X_test, meta["n_constant_features"] = standardize(X, X_test)
    return X, X_test, meta


def _as_f64(a: np.ndarray | None) -> np.ndarray | None:
    """``a`` as a float64 array, or None."""
    return None if a is None else np.asarray(a, dtype=np.float64)
