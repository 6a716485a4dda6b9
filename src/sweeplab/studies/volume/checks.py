"""The minima-volume study's preflight: :func:`check_data`, before any work.

Light on purpose (no torch): a grid's driver checks every run with it while planning.
"""

from __future__ import annotations

from sweeplab.errors import ConfigError
from sweeplab.studies.volume.config import VolumeConfig

IMAGE_SIDE = {"digits": 8, "mnist": 28, "fashion-mnist": 28}
"""Height and width of each dataset's images."""


def check_data(cfg: VolumeConfig) -> None:
    """Fail before any work when the files are missing or the dataset is too small.

    Checks that the pool (``base_size + max extra_sizes``) and ``test_size`` fit the
    dataset's splits (digits: both in its 1,797 samples; IDX: the pool in the training
    split, the test set in the test split, counted from the label files), and that the
    CNN's pooling blocks leave at least one pixel, and that ``device: cuda`` has a GPU
    (torch is imported for that check only).
    """
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device", "cuda", "no CUDA device is visible here; allowed "
                              "values: cpu, or cuda on a machine with a GPU")
    side = IMAGE_SIDE[cfg.dataset]
    if cfg.arch == "cnn" and side >> len(cfg.channels) < 1:
        raise ConfigError(
            "channels", list(cfg.channels),
            f"each channel count adds a 2x2 max-pool: {len(cfg.channels)} halve {cfg.dataset}'s "
            f"{side}x{side} images to nothing (at most {side.bit_length() - 1} entries)",
        )
    if cfg.dataset != "digits":
        from sweeplab.data.idx import read_idx
        from sweeplab.data.mnist import locate_idx_files

        files = locate_idx_files(cfg.dataset, cfg.data_dir)
        n_train = len(read_idx(files["train_labels"]))
        n_test = len(read_idx(files["test_labels"]))
        if cfg.pool_size > n_train:
            raise ConfigError("extra_sizes", list(cfg.extra_sizes),
                              f"{cfg.dataset} has {n_train} training samples: base_size + max "
                              f"extra_sizes = {cfg.pool_size} is too many")
        if cfg.test_size > n_test:
            raise ConfigError("test_size", cfg.test_size,
                              f"{cfg.dataset} has {n_test} test samples")
        return
    available = 1797
    if cfg.pool_size + cfg.test_size > available:
        raise ConfigError(
            "extra_sizes", list(cfg.extra_sizes),
            f"digits has {available} samples: base_size + max extra_sizes + test_size "
            f"= {cfg.pool_size + cfg.test_size} is too many",
        )
