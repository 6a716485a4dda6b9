"""The data of a minima-volume run: an ordered pool, its labels as trained, a test set.

The pool is ``base_size`` samples then ``max(extra_sizes)`` added ones, drawn without
replacement by ``data_seed`` from the dataset's training split; a model with ``m`` added
samples trains on the first ``base_size + m``, and the landscape of size ``s`` is the
loss over the first ``s``. So the pools of every model and landscape of a run are
nested, as in Fan, Sandlund & Ko (2025, arXiv 2511.04808, Sec. 3).

In the ``poison`` category the added samples carry a wrong label, ``(y + r) mod C`` with
``r`` uniform in ``[1, C-1]`` (seeded by ``data_seed``), and models and landscapes see
those labels. Test samples are the dataset's test split (digits has none: held out from
the same shuffle, disjoint from the pool). With ``normalize: [mean, std]`` every image
(pool and test) becomes ``(x - mean) / std``, ``x`` the pixels in [0, 1] (the authors
normalise MNIST with 0.1307 and 0.3081, its training split's pixel mean and std).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sweeplab.core.rundir import save_npz
from sweeplab.studies.volume.checks import IMAGE_SIDE, check_data
from sweeplab.studies.volume.config import VolumeConfig

__all__ = ["IMAGE_SIDE", "N_CLASSES", "VolumeData", "check_data", "load_volume_data"]

N_CLASSES = 10


@dataclass(frozen=True)
class VolumeData:
    """Pool and test tensors (N, 1, H, W) float32 (in [0, 1] unless normalised), int64 labels.

    ``labels`` are the labels models train on (poisoned where ``poisoned``),
    ``true_labels`` the dataset's; ``pool_index``/``test_index`` the rows of the source
    splits, saved with the run so a split can be audited.
    """

    x: torch.Tensor
    labels: torch.Tensor
    true_labels: torch.Tensor
    poisoned: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    pool_index: np.ndarray
    test_index: np.ndarray

    def train_set(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``size`` pool samples and their training labels."""
        return self.x[:size], self.labels[:size]

    def split_arrays(self) -> dict[str, np.ndarray]:
        """What ``data/split.npz`` holds."""
        return {
            "pool_index": self.pool_index, "test_index": self.test_index,
            "labels": self.labels.numpy(), "true_labels": self.true_labels.numpy(),
            "poisoned": self.poisoned.numpy(),
        }


def _source(
    cfg: VolumeConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Images (n, H, W) in [0, 1] and labels of the training split (and test split)."""
    if cfg.dataset == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.asarray(bunch.images, dtype=np.float32) / 16.0
        return images, np.asarray(bunch.target, dtype=np.int64), None, None
    from sweeplab.data.mnist import load_idx_images

    x, y, x_test, y_test = load_idx_images(cfg.dataset, cfg.data_dir)
    return x.astype(np.float32) / 255.0, y, x_test.astype(np.float32) / 255.0, y_test


def load_volume_data(cfg: VolumeConfig) -> VolumeData:
    """The run's pool (in its fixed order), poisoned labels if any, and test set."""
    check_data(cfg)
    x, y, x_test, y_test = _source(cfg)
    rng = np.random.default_rng(cfg.data_seed)
    order = rng.permutation(len(y))
    if x_test is None:  # digits: the test set comes from the same shuffle, after the pool
        test_index = order[cfg.pool_size:cfg.pool_size + cfg.test_size]
        x_test, y_test = x[test_index], y[test_index]
    else:  # sizes checked by check_data
        test_index = np.sort(rng.permutation(len(y_test))[:cfg.test_size])
        x_test, y_test = x_test[test_index], y_test[test_index]
    pool_index = order[:cfg.pool_size]
    true = y[pool_index]
    labels = true.copy()
    poisoned = np.zeros(cfg.pool_size, dtype=bool)
    if cfg.category == "poison":
        offsets = rng.integers(1, N_CLASSES, size=cfg.pool_size - cfg.base_size)
        labels[cfg.base_size:] = (true[cfg.base_size:] + offsets) % N_CLASSES
        poisoned[cfg.base_size:] = True
    x_pool = x[pool_index]
    if cfg.normalize is not None:
        mean, std = cfg.normalize
        x_pool = (x_pool - np.float32(mean)) / np.float32(std)
        x_test = (x_test - np.float32(mean)) / np.float32(std)
    return VolumeData(
        x=torch.from_numpy(np.ascontiguousarray(x_pool, dtype=np.float32)).unsqueeze(1),
        labels=torch.from_numpy(labels), true_labels=torch.from_numpy(true),
        poisoned=torch.from_numpy(poisoned),
        x_test=torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float32)).unsqueeze(1),
        y_test=torch.from_numpy(np.asarray(y_test, dtype=np.int64)),
        pool_index=pool_index, test_index=np.asarray(test_index),
    )


def save_split(data: VolumeData, path: Path) -> Path:
    """The split indices and labels, written atomically as ``.npz``; returns ``path``."""
    return save_npz(path, data.split_arrays())
