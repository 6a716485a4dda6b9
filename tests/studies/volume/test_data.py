"""The minima-volume data: nested pools, poisoned labels, disjoint test sets, IDX loading.

Poisoning follows Fan, Sandlund & Ko (2025, arXiv 2511.04808, Sec. 4): an added sample's
label becomes (y + r) mod C with r uniform in [1, C-1], so it is never the true label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sweeplab.data.idx import write_idx
from sweeplab.errors import ConfigError
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.data import check_data, load_volume_data


def test_poisoned_labels_never_equal_the_true_label():
    cfg = VolumeConfig(category="poison", base_size=100, extra_sizes=(0, 300, 700),
                       test_size=200, data_seed=3)
    data = load_volume_data(cfg)
    added = slice(cfg.base_size, cfg.pool_size)
    assert bool((data.labels[added] != data.true_labels[added]).all())
    assert torch.equal(data.labels[:cfg.base_size], data.true_labels[:cfg.base_size])
    offsets = (data.labels[added] - data.true_labels[added]) % 10
    assert set(offsets.tolist()) == set(range(1, 10))  # every wrong label is reachable
    assert data.poisoned.sum() == 700 and not data.poisoned[:cfg.base_size].any()


def test_clean_categories_keep_every_label():
    for category in ("low_data", "sam"):
        data = load_volume_data(VolumeConfig(category=category))
        assert torch.equal(data.labels, data.true_labels) and not data.poisoned.any()


def test_pool_is_nested_and_test_set_disjoint_and_seeded():
    cfg = VolumeConfig(base_size=100, extra_sizes=(0, 50, 400), test_size=300, data_seed=1)
    data = load_volume_data(cfg)
    assert len(data.pool_index) == 500 and len(set(data.pool_index)) == 500
    assert not set(data.pool_index) & set(data.test_index)
    x, y = data.train_set(150)
    assert torch.equal(x, data.x[:150]) and torch.equal(y, data.labels[:150])
    again = load_volume_data(cfg)
    assert np.array_equal(again.pool_index, data.pool_index)
    other = load_volume_data(cfg.model_copy(update={"data_seed": 2}))
    assert not np.array_equal(other.pool_index, data.pool_index)
    assert data.x.shape[1:] == (1, 8, 8) and float(data.x.max()) <= 1.0


def test_too_large_a_pool_for_digits_is_a_config_error():
    cfg = VolumeConfig(base_size=1000, extra_sizes=(0, 700), test_size=500)
    with pytest.raises(ConfigError, match="extra_sizes"):
        load_volume_data(cfg)


def test_mnist_format_files_load_all_classes(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 120), ("t10k", 40)):
        write_idx(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
                  tmp_path / f"{split}-images-idx3-ubyte")
        write_idx((np.arange(n) % 10).astype(np.uint8), tmp_path / f"{split}-labels-idx1-ubyte")
    cfg = VolumeConfig(dataset="mnist", data_dir=tmp_path, base_size=20, extra_sizes=(0, 40),
                       test_size=30)
    data = load_volume_data(cfg)
    assert data.x.shape == (60, 1, 28, 28) and data.x_test.shape == (30, 1, 28, 28)
    assert set(data.true_labels.tolist()) <= set(range(10))
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
    # the split sizes are checked against the files before any work
    with pytest.raises(ConfigError, match="test_size.*has 40 test samples"):
        check_data(cfg.model_copy(update={"test_size": 41}))
    with pytest.raises(ConfigError, match="extra_sizes.*has 120 training samples"):
        check_data(cfg.model_copy(update={"extra_sizes": (0, 101)}))
    check_data(cfg.model_copy(update={"extra_sizes": (0, 100), "test_size": 40}))  # all fit


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="real Fashion-MNIST not installed (Debian dataset-fashion-mnist)")
def test_real_fashion_mnist_is_found_offline_and_split_train_pool_test_test():
    from sweeplab.data.idx import read_idx

    cfg = VolumeConfig(dataset="fashion-mnist", category="poison", base_size=100,
                       extra_sizes=(0, 200), test_size=300, data_seed=4)
    data = load_volume_data(cfg)  # no data_dir: the system folder is among the defaults
    assert data.x.shape == (300, 1, 28, 28) and data.x_test.shape == (300, 1, 28, 28)
    train_y = read_idx(FASHION_DIR / "train-labels-idx1-ubyte.gz")
    test_y = read_idx(FASHION_DIR / "t10k-labels-idx1-ubyte.gz")
    # the pool is rows of the training split, the test set rows of the test split
    assert np.array_equal(data.true_labels.numpy(), train_y[data.pool_index])
    assert np.array_equal(data.y_test.numpy(), test_y[data.test_index])
    assert data.test_index.max() < len(test_y) and len(set(data.test_index)) == 300
    assert bool((data.labels[100:] != data.true_labels[100:]).all())


def test_normalize_standardises_pool_and_test_images_and_keeps_the_labels():
    base = {"dataset": "digits", "base_size": 100, "extra_sizes": (0, 50), "test_size": 100,
            "category": "poison"}
    raw = load_volume_data(VolumeConfig(**base))
    norm = load_volume_data(VolumeConfig(**base, normalize=(0.3, 0.4)))
    torch.testing.assert_close(norm.x, (raw.x - 0.3) / 0.4)
    torch.testing.assert_close(norm.x_test, (raw.x_test - 0.3) / 0.4)
    assert torch.equal(norm.labels, raw.labels) and torch.equal(norm.y_test, raw.y_test)
    assert norm.x.dtype == torch.float32
