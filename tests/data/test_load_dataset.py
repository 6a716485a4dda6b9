"""load_dataset end to end: every dataset, the seed rule, meta, and the cheap file check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sweeplab.data import (
    DataConfig,
    Dataset,
    check_dataset_available,
    load_dataset,
    read_idx,
    write_idx,
)
from sweeplab.errors import ConfigError, DataNotFoundError


def _assert_task(ds: Dataset, dim: int) -> None:
    """The contract every study relies on: float64, {-1,+1} labels, matching dims."""
    assert ds.X.dtype == ds.X_test.dtype == ds.y.dtype == ds.y_test.dtype == np.float64
    assert ds.X.shape == (ds.n_train, dim) and ds.X_test.shape == (ds.n_test, dim)
    assert set(np.unique(ds.y)) == set(np.unique(ds.y_test)) == {-1.0, 1.0}
    json.dumps(ds.meta)  # saved with the run: must be JSON-able
    assert ds.meta["n_train"] == ds.n_train and ds.meta["n_test"] == ds.n_test
    assert ds.meta["feature_dim"] == ds.dim == dim


def test_synthetic_with_defaults():
    """Defaults: 512 + 512 points in 2-D, standardised with training statistics."""
    ds = load_dataset(DataConfig(), seed=0)
    _assert_task(ds, 2)
    assert ds.name == "synthetic" and ds.n_train == ds.n_test == 512
    np.testing.assert_allclose(ds.X.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X.std(axis=0), 1.0)
    assert ds.meta["source"] == "synthetic" and len(ds.meta["direction"]) == 2


def test_data_seed_overrides_the_run_seed():
    """data_seed fixes the data across run seeds; without it the run seed decides."""
    fixed = DataConfig(data_seed=7, input_dim=3)
    np.testing.assert_array_equal(load_dataset(fixed, 0).X, load_dataset(fixed, 1).X)
    assert load_dataset(fixed, 0).meta["data_seed"] == 7
    free = DataConfig(input_dim=3)
    assert not np.allclose(load_dataset(free, 0).X, load_dataset(free, 1).X)
    pinned_to_1 = DataConfig(data_seed=1, input_dim=3)
    np.testing.assert_array_equal(load_dataset(free, 1).X, load_dataset(pinned_to_1, 99).X)


def test_negative_seed_is_a_config_error():
    """numpy's generators refuse negative seeds: say so up front, naming the key."""
    with pytest.raises(ConfigError) as info:
        load_dataset(DataConfig(data_seed=-3), seed=0)
    assert info.value.key == "data_seed"


def test_digits_with_pca():
    """Digits pair with PCA: pca features, standardised, meta says sklearn and the pair."""
    ds = load_dataset(DataConfig(dataset="digits", digits=(4, 9), pca=10), seed=0)
    _assert_task(ds, 10)
    assert ds.meta["source"] == "sklearn" and ds.meta["digits"] == [4, 9]
    assert ds.meta["native_dim"] == 64 and ds.meta["pca"] == 10
    assert 0.0 < ds.meta["explained_variance"] < 1.0
    np.testing.assert_allclose(ds.X.std(axis=0), 1.0)


def test_mnist_from_files_without_preprocessing_keeps_pixels(tmp_path: Path, write_subset):
    """pca=None, standardize=False: inputs are the flattened pixels / 255."""
    written = write_subset(tmp_path / "MNIST" / "raw")
    cfg = DataConfig(dataset="mnist", data_dir=tmp_path, digits=(7, 1), standardize=False)
    check_dataset_available(cfg)
    ds = load_dataset(cfg, seed=0)
    _assert_task(ds, 784)
    labels = written["train_labels"]
    keep = (labels == 7) | (labels == 1)
    np.testing.assert_array_equal(ds.X, written["train_images"][keep].reshape(-1, 784) / 255)
    np.testing.assert_array_equal(ds.y, np.where(labels[keep] == 7, -1.0, 1.0))
    assert set(ds.meta["source"]) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert all(str(tmp_path) in p for p in ds.meta["source"].values())


def test_mnist_pca_is_fit_on_train_only(tmp_path: Path, write_subset):
    """Replacing the test files changes the test inputs, never the training inputs."""
    write_subset(tmp_path, gz=False)
    cfg = DataConfig(dataset="mnist", data_dir=tmp_path, digits=(3, 5), pca=8)
    before = load_dataset(cfg, seed=0)
    images = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(255 - read_idx(images), images)
    after = load_dataset(cfg, seed=0)
    np.testing.assert_array_equal(before.X, after.X)
    assert before.meta["explained_variance"] == after.meta["explained_variance"]
    assert not np.allclose(before.X_test, after.X_test)
    _assert_task(after, 8)


def test_real_fashion_mnist_pair_from_default_location(no_default_dirs, fashion_dir):
    """No data_dir: the Debian copy is found; a balanced pair has 12000 + 2000 samples."""
    cfg = DataConfig(dataset="fashion-mnist", digits=(0, 9), pca=30)
    check_dataset_available(cfg)
    ds = load_dataset(cfg, seed=0)
    _assert_task(ds, 30)
    assert (ds.n_train, ds.n_test) == (12000, 2000)
    assert int(np.sum(ds.y == -1)) == 6000 and int(np.sum(ds.y_test == 1)) == 1000
    assert all(p.startswith(str(fashion_dir)) for p in ds.meta["source"].values())


def test_check_dataset_available_fails_before_reading(tmp_path: Path):
    """Missing IDX files raise DataNotFoundError; file-free datasets always pass."""
    with pytest.raises(DataNotFoundError, match="--data_dir"):
        check_dataset_available(DataConfig(dataset="mnist", data_dir=tmp_path))
    check_dataset_available(DataConfig(dataset="synthetic"))
    check_dataset_available(DataConfig(dataset="digits", digits=(0, 1)))


def test_check_dataset_available_does_not_read_files(tmp_path: Path):
    """Empty placeholder files pass the check: it only locates, it never reads."""
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (tmp_path / stem).touch()
    check_dataset_available(DataConfig(dataset="mnist", data_dir=tmp_path))


@pytest.mark.parametrize(
    ("y", "match"),
    [(np.array([0.0, 1.0]), "-1 or \\+1"), (np.array([1, -1]), "float64")],
)
def test_dataset_rejects_labels_outside_pm1(y, match):
    """A Dataset with {0, 1} or integer labels is refused at construction."""
    with pytest.raises(ValueError, match=match):
        Dataset(X=np.zeros((2, 3)), y=y, X_test=None, y_test=None, name="x")


def test_dataset_checks_test_split_shape():
    """Test inputs must have as many features as training inputs."""
    y = np.array([-1.0, 1.0])
    with pytest.raises(ValueError, match="features"):
        Dataset(np.zeros((2, 3)), y, np.zeros((2, 4)), y, "x")
    ds = Dataset(np.zeros((2, 3)), y, None, None, "x")
    assert ds.n_test == 0 and ds.dim == 3
