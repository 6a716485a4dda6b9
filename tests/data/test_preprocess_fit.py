"""PCA and standardisation: fitted on train only, applied identically to test."""

from __future__ import annotations

import numpy as np
import pytest

from sweeplab.data.preprocess import fit_pca, preprocess, standardize
from sweeplab.errors import ConfigError


@pytest.fixture
def data():
    """Correlated, off-centre training and test data (n=200, d=12)."""
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((12, 12)) * np.linspace(3, 0.1, 12)[:, None]
    X = rng.standard_normal((200, 12)) @ mix + 5.0
    X_test = rng.standard_normal((80, 12)) @ mix - 2.0
    return X, X_test


def test_pca_matches_numpy_svd_of_centred_train(data):
    """Projection is (x - train mean) V_k, V_k the top right singular vectors of train."""
    X, X_test = data
    k = 4
    Xp, Xtp, explained = fit_pca(X, X_test, k, seed=0)
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    ref, ref_test = (X - mean) @ vt[:k].T, (X_test - mean) @ vt[:k].T
    signs = np.sign(np.sum(Xp * ref, axis=0))  # each axis is defined up to sign
    np.testing.assert_allclose(Xp, ref * signs, atol=1e-8)
    np.testing.assert_allclose(Xtp, ref_test * signs, atol=1e-8)
    assert explained == pytest.approx(np.sum(s[:k] ** 2) / np.sum(s**2))
    assert Xp.shape == (200, k) and Xtp.shape == (80, k)


def test_pca_ignores_the_test_data(data):
    """Changing the test set changes nothing about the transformed training set."""
    X, X_test = data
    a, _, ea = fit_pca(X, X_test, 3, seed=0)
    b, _, eb = fit_pca(X, X_test * 100 + 7, 3, seed=0)
    c, none, _ = fit_pca(X, None, 3, seed=0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert ea == eb and none is None


def test_test_point_at_train_mean_maps_to_origin(data):
    """The test transform uses the training mean, not the test mean."""
    X, _ = data
    Xt = np.vstack([X.mean(axis=0), X[:3]])
    Xp, Xtp, _ = fit_pca(X, Xt, 5, seed=0)
    np.testing.assert_allclose(Xtp[0], 0.0, atol=1e-9)
    np.testing.assert_allclose(Xtp[1:], Xp[:3], atol=1e-9)


def test_pca_is_deterministic(data):
    """Same data and seed: bit-identical projection."""
    X, X_test = data
    np.testing.assert_array_equal(fit_pca(X, X_test, 6, 1)[1], fit_pca(X, X_test, 6, 1)[1])


def test_more_components_than_samples_is_a_pca_error():
    """k > min(n, d) cannot be fitted; the error names key pca and the limit."""
    X = np.random.default_rng(0).standard_normal((5, 20))
    with pytest.raises(ConfigError, match=r"min\(5, 20\)") as info:
        fit_pca(X, None, 6, seed=0)
    assert info.value.key == "pca"


def test_standardize_gives_train_mean_zero_std_one_and_uses_train_stats(data):
    """Per feature: train mean 0 and std 1; test shifted/scaled by the training stats."""
    X, X_test = data
    Xs, Xts, n_const = standardize(X, X_test)
    np.testing.assert_allclose(Xs.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xs.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(Xts, (X_test - X.mean(axis=0)) / X.std(axis=0))
    assert n_const == 0


def test_constant_feature_is_centred_not_divided_by_zero():
    """A feature constant on train (an always-black pixel) becomes 0, test values centred."""
    X = np.column_stack([np.arange(6.0), np.full(6, 0.3)])
    X_test = np.array([[1.0, 0.3], [2.0, 0.8]])
    Xs, Xts, n_const = standardize(X, X_test)
    assert n_const == 1
    assert np.all(np.isfinite(Xs)) and np.all(np.isfinite(Xts))
    np.testing.assert_array_equal(Xs[:, 1], 0.0)
    np.testing.assert_allclose(Xts[:, 1], [0.0, 0.5])


def test_preprocess_chains_pca_then_standardize(data):
    """pca=k then standardize: k features, each z-scored on train; meta records both."""
    X, X_test = data
    Xp, Xtp, meta = preprocess(X, X_test, pca=3, standardize_features=True, seed=0)
    assert Xp.shape == (200, 3) and Xtp.shape == (80, 3)
    assert Xp.dtype == Xtp.dtype == np.float64
    np.testing.assert_allclose(Xp.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xp.std(axis=0), 1.0, rtol=1e-12)
    assert meta["pca"] == 3 and meta["standardize"] is True
    assert 0.0 < meta["explained_variance"] <= 1.0


def test_preprocess_without_steps_is_identity_in_float64():
    """No PCA, no standardisation: the data pass through unchanged (as float64)."""
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    Xp, Xtp, meta = preprocess(X, None, pca=None, standardize_features=False, seed=0)
    assert Xp.dtype == np.float64 and Xtp is None
    np.testing.assert_array_equal(Xp, X)
    assert meta["explained_variance"] is None
