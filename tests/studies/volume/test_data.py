"""The minima-volume data: nested pools, poisoned labels, disjoint test sets, IDX loading.

Poisoning follows Fan, Sandlund & Ko (2025, arXiv 2511.04808, Sec. 4): an added sample's
label becomes (y + r) mod C with r uniform in [1, C-1], so it is never the true label.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweeplab.data.idx import write_idx
from sweeplab.errors import ConfigError
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.data import load_volume_data


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
