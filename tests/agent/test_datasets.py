"""The agent's datasets: real splits that partition the data, seeded and stratified; the
file formats read byte-exact (IDX, CIFAR-10 pickles); clear errors; a labelled fallback."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from sweeplab.agent.datasets import (
    FASHION_MNIST_CLASSES,
    load_dataset,
    stratified_choice,
    synthetic_images,
)
from sweeplab.data.idx import read_idx, write_idx
from sweeplab.errors import ConfigError, DataNotFoundError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _sorted_rows(x: torch.Tensor) -> np.ndarray:
    """Images as rows, sorted lexicographically: equal multisets give equal arrays."""
    flat = x.reshape(x.shape[0], -1).numpy()
    return flat[np.lexsort(flat.T[::-1])]


def _shares(y: torch.Tensor, k: int) -> np.ndarray:
    return np.bincount(y.numpy(), minlength=k) / len(y)


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder without SWEEPLAB_DATA_DIR, so no default folder has data."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SWEEPLAB_DATA_DIR", raising=False)
    return cwd


def test_digits_splits_partition_the_data_stratified_and_seeded():
    from sklearn.datasets import load_digits

    data = load_dataset("digits", seed=3)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10 and data.source == "real"
    assert data.class_names == [str(d) for d in range(10)]
    parts = (data.x_train, data.x_val, data.x_test)
    assert [p.dtype for p in parts] == [torch.float32] * 3
    assert data.y_train.dtype == torch.int64
    assert all(p.shape[1:] == (1, 8, 8) and p.min() >= 0 and p.max() <= 1 for p in parts)
    assert (len(data.x_test), len(data.x_val), len(data.x_train)) == (359, 144, 1294)
    # Every image of load_digits is used exactly once: the splits are disjoint and complete.
    everything = torch.cat(parts)
    full = torch.from_numpy(load_digits().images.astype(np.float32) / 16)[:, None]
    np.testing.assert_array_equal(_sorted_rows(everything), _sorted_rows(full))
    # Stratified: each split keeps every class's share of the data to within ~1 sample.
    overall = _shares(torch.cat([data.y_train, data.y_val, data.y_test]), 10)
    for y in (data.y_train, data.y_val, data.y_test):
        assert np.abs(_shares(y, 10) - overall).max() <= 1.5 / len(y) + 1e-12
    again, other = load_dataset("digits", seed=3), load_dataset("digits", seed=4)
    assert torch.equal(again.x_test, data.x_test) and torch.equal(again.y_train, data.y_train)
    assert not torch.equal(other.x_test, data.x_test)


def test_max_train_subsamples_train_and_val_in_proportion():
    data = load_dataset("digits", seed=0, max_train=200, val_fraction=0.2)
    assert len(data.y_train) == 200 and len(data.y_val) == 50 and len(data.y_test) == 359
    assert np.bincount(data.y_train.numpy(), minlength=10).min() >= 19  # ~20 per class
    assert "max_train=200" in data.description


def test_stratified_choice_draws_exactly_n_keeping_class_shares():
    y = np.repeat(np.arange(3), [50, 30, 20])
    picked = stratified_choice(y, 11, np.random.default_rng(0))
    assert picked.size == 11 == np.unique(picked).size
    counts = np.bincount(y[picked], minlength=3)
    assert np.all(np.abs(counts - 11 * np.array([0.5, 0.3, 0.2])) < 1)


def test_fashion_mnist_from_the_real_debian_files():
    if not all((FASHION_DIR / f"{s}-{k}-idx{d}-ubyte.gz").is_file()
               for s in ("train", "t10k") for k, d in (("images", 3), ("labels", 1))):
        pytest.skip(f"real Fashion-MNIST not in {FASHION_DIR} (Debian dataset-fashion-mnist)")
    data = load_dataset("fashion-mnist", data_dir=FASHION_DIR, seed=0, max_train=1000)
    assert data.class_names == list(FASHION_MNIST_CLASSES) and data.source == "real"
    assert data.input_shape == (1, 28, 28)
    assert (len(data.y_train), len(data.y_test)) == (1000, 10000)
    test_images = read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(data.x_test[:, 0].numpy() * 255, test_images)
    labels = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    np.testing.assert_array_equal(data.y_test.numpy(), labels)
    assert np.bincount(data.y_train.numpy()).tolist() == [100] * 10  # balanced 60000 / 10
    assert str(FASHION_DIR) in data.description


def test_mnist_reads_idx_files_and_carves_val_from_train(tmp_path: Path):
    rng = np.random.default_rng(1)
    train_x = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    train_y = np.repeat(np.arange(10, dtype=np.uint8), 30)
    test_x = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    test_y = np.arange(50, dtype=np.uint8) % 10
    for arr, stem in ((train_x, "train-images-idx3-ubyte"), (train_y, "train-labels-idx1-ubyte"),
                      (test_x, "t10k-images-idx3-ubyte"), (test_y, "t10k-labels-idx1-ubyte")):
        write_idx(arr, tmp_path / stem)
    data = load_dataset("mnist", data_dir=tmp_path, seed=0, val_fraction=0.2)
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (240, 60, 50)
    assert data.class_names == [str(d) for d in range(10)] and data.input_shape == (1, 28, 28)
    np.testing.assert_array_equal(data.x_test[:, 0].numpy() * 255, test_x)  # official test
    np.testing.assert_array_equal(data.y_test.numpy(), test_y)
    np.testing.assert_array_equal(
        _sorted_rows(torch.cat([data.x_train, data.x_val])),
        _sorted_rows(torch.from_numpy(train_x[:, None].astype(np.float32) / 255)))
    assert np.bincount(data.y_val.numpy()).tolist() == [6] * 10


def _cifar_batch(rng: np.random.Generator, n: int, label: str) -> dict:
    """A batch in the exact layout of the CIFAR-10 python version (bytes keys)."""
    return {b"batch_label": label.encode(), b"labels": [int(v) for v in np.arange(n) % 10],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def test_cifar10_reads_python_batches_in_the_exact_layout(tmp_path: Path):
    rng = np.random.default_rng(2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {f"data_batch_{i}": _cifar_batch(rng, 40, f"training batch {i} of 5")
               for i in range(1, 6)}
    batches["test_batch"] = _cifar_batch(rng, 30, "testing batch 1 of 1")
    names = [f"kind{i}".encode() for i in range(10)]
    batches["batches.meta"] = {b"label_names": names, b"num_cases_per_batch": 40}
    for name, content in batches.items():
        with open(folder / name, "wb") as fh:
            pickle.dump(content, fh, protocol=2)
    data = load_dataset("cifar-10", data_dir=tmp_path, seed=0)
    assert data.input_shape == (3, 32, 32) and data.class_names == [f"kind{i}" for i in range(10)]
    assert (len(data.y_train) + len(data.y_val), len(data.y_test)) == (200, 30)
    raw = batches["test_batch"][b"data"]
    i, c, h, w = 7, 2, 5, 30  # pixel (h, w) of channel c sits at c*1024 + h*32 + w
    assert data.x_test[i, c, h, w].item() == pytest.approx(raw[i, c * 1024 + h * 32 + w] / 255)
    np.testing.assert_allclose(data.x_test.reshape(30, -1).numpy() * 255, raw, atol=1e-4)
    np.testing.assert_array_equal(data.y_test.numpy(), batches["test_batch"][b"labels"])


def test_unknown_dataset_names_the_allowed_values():
    with pytest.raises(ConfigError, match="invalid dataset=imagenet: allowed values are digits"):
        load_dataset("imagenet")


@pytest.mark.parametrize(("key", "kwargs"), [("val_fraction", {"val_fraction": 1.0}),
                                             ("max_train", {"max_train": 5})])
def test_bad_arguments_are_refused_naming_the_key(key: str, kwargs: dict):
    with pytest.raises(ConfigError, match=f"invalid {key}="):
        load_dataset("digits", **kwargs)


@pytest.mark.parametrize(("name", "shape"), [("mnist", (1, 28, 28)), ("cifar-10", (3, 32, 32))])
def test_missing_files_error_or_labelled_synthetic_fallback(empty_cwd: Path, name: str,
                                                            shape: tuple):
    with pytest.raises(DataNotFoundError, match=f"dataset '{name}': files not found; looked in"
                                                f" {empty_cwd / 'nothing'}"):
        load_dataset(name, data_dir=empty_cwd / "nothing")
    data = load_dataset(name, data_dir=empty_cwd / "nothing", allow_synthetic=True,
                        max_train=100)
    assert data.source == "synthetic" and data.input_shape == shape and data.num_classes == 10
    assert data.description.startswith(f"SYNTHETIC stand-in for {name}")
    assert "last resort" in data.description and len(data.y_train) == 100
    assert tuple(data.x_test.shape[1:]) == shape


def test_synthetic_task_is_seeded_labelled_and_learnable():
    data = load_dataset("synthetic", seed=5)
    assert data.source == "synthetic" and data.description.startswith("synthetic:")
    assert torch.equal(load_dataset("synthetic", seed=5).x_train, data.x_train)
    # A nearest-class-mean classifier beats chance (10%) by far: the classes are real.
    means = torch.stack([data.x_train[data.y_train == k].mean(0) for k in range(10)])
    dist = ((data.x_test[:, None] - means[None]) ** 2).flatten(2).sum(-1)
    assert (dist.argmin(1) == data.y_test).float().mean() > 0.6
    x, y = synthetic_images((3, 8, 8), 4, 40, seed=0)
    assert x.shape == (40, 3, 8, 8) and np.bincount(y).tolist() == [10] * 4
    assert x.min() >= 0 and x.max() <= 1
