"""The one entry point studies use: ``load_dataset(cfg, seed) -> Dataset``.

A :class:`Dataset` is a binary classification task in the form every study expects:
float64 inputs, labels in {-1, +1}, a held-out test set, and a JSON-able ``meta`` record
of where the data came from and how it was preprocessed (saved with the run so a result
can be traced back to its data). :func:`check_dataset_available` lets the CLI fail on
missing files before it creates any run directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sweeplab.data.config import DataConfig
from sweeplab.data.mnist import load_idx_pair, locate_idx_files
from sweeplab.data.synthetic import make_gaussians
from sweeplab.errors import ConfigError

__all__ = ["Dataset", "check_dataset_available", "load_dataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    """A binary task: ``X`` (n, d) float64, ``y`` (n,) float64 in {-1, +1}, and a test set.

    ``X_test``/``y_test`` may be None (a task without held-out data). ``name`` is the
    dataset's config name; ``meta`` records source, classes, dimensions and
    preprocessing. Shapes and labels are checked on construction, so a study can rely on
    them.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    name: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check shapes agree and labels are exactly -1/+1 (a ValueError otherwise)."""
        _check_split(self.X, self.y, "train")
        if (self.X_test is None) != (self.y_test is None):
            raise ValueError("X_test and y_test must both be given or both be None")
        if self.X_test is not None:
            _check_split(self.X_test, self.y_test, "test")
            if self.X_test.shape[1] != self.X.shape[1]:
                raise ValueError(
                    f"test inputs have {self.X_test.shape[1]} features, train {self.X.shape[1]}"
                )

    @property
    def n_train(self) -> int:
        """Number of training samples."""
        return int(self.X.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test samples (0 without a test set)."""
        return 0 if self.X_test is None else int(self.X_test.shape[0])

    @property
    def dim(self) -> int:
        """Number of input features the model sees."""
        return int(self.X.shape[1])


def _check_split(X: Any, y: Any, which: str) -> None:
    """Raise ValueError unless X is (n, d) float64, y (n,) float64 with values in {-1, +1}."""
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype != np.float64:
        raise ValueError(f"{which} inputs must be a 2-D float64 array")
    if not isinstance(y, np.ndarray) or y.shape != (X.shape[0],) or y.dtype != np.float64:
        raise ValueError(f"{which} labels must be a float64 array of shape ({X.shape[0]},)")
    if not np.all((y == -1.0) | (y == 1.0)):
        raise ValueError(f"{which} labels must be -1 or +1")


def check_dataset_available(cfg: DataConfig) -> None:
    """Raise :class:`~sweeplab.errors.DataNotFoundError` if the dataset's files are missing.

    Only checks that files exist (no reading), so the CLI can call it for every config of
    a grid before creating any run directory. Synthetic and digits need no files.
    """
    if cfg.dataset in ("mnist", "fashion-mnist"):
        locate_idx_files(cfg.dataset, cfg.data_dir)


def load_dataset(cfg: DataConfig, seed: int, use_cache: bool = True) -> Dataset:
    """Build the task ``cfg`` describes, preprocessed with training statistics only.

    The data seed is ``cfg.data_seed`` when set, else ``seed`` (the run's seed), so data
    can be held fixed while the training seed varies. Real images are flattened and
    scaled to [0, 1]; class ``digits[0]`` is labelled -1 and ``digits[1]`` +1. Then PCA
    (``cfg.pca``) and standardisation (``cfg.standardize``) are fitted on the training set
    and applied to both splits (:mod:`sweeplab.data.preprocess`). With ``use_cache``, a
    real task built before from the same files and settings is read back bit for bit
    (:mod:`sweeplab.data.cache`).
    """
    data_seed = cfg.data_seed if cfg.data_seed is not None else seed
    key = "data_seed" if cfg.data_seed is not None else "seed"
    if int(data_seed) < 0:
        raise ConfigError(key, data_seed, "must be a non-negative integer")
    if cfg.dataset == "synthetic" or not use_cache:
        return _build(cfg, int(data_seed))
    from sweeplab.data import cache

    files = None if cfg.dataset == "digits" else locate_idx_files(cfg.dataset, cfg.data_dir)
    settings = {"digits": list(cfg.digits), "pca": cfg.pca, "standardize": cfg.standardize,
                "data_seed": int(data_seed)}
    k = cache.key(cfg.dataset, cache.source_identity(cfg.dataset, files), settings)
    hit = cache.load(k)
    if hit is not None:
        arrays, meta = hit
        if files is not None:  # the same bytes may sit elsewhere now: record these files
            meta["source"] = {role: str(path) for role, path in files.items()}
        return Dataset(X=arrays["X"], y=arrays["y"], X_test=arrays.get("X_test"),
                       y_test=arrays.get("y_test"), name=cfg.dataset, meta=meta)
    data = _build(cfg, int(data_seed))
    arrays = {"X": data.X, "y": data.y, "X_test": data.X_test, "y_test": data.y_test}
    cache.store(k, {name: a for name, a in arrays.items() if a is not None}, data.meta)
    return data


def _build(cfg: DataConfig, data_seed: int) -> Dataset:
    """:func:`load_dataset` without the cache."""
    meta: dict[str, Any] = {"dataset": cfg.dataset, "data_seed": int(data_seed)}
    if cfg.dataset == "synthetic":
        s = make_gaussians(cfg.n_samples, cfg.input_dim, cfg.separation, cfg.noise, data_seed)
        X, y, X_test, y_test = s.X, s.y, s.X_test, s.y_test
        meta.update(
            source="synthetic",
            separation=cfg.separation,
            noise=cfg.noise,
            direction=s.direction.tolist(),
        )
    elif cfg.dataset == "digits":
        from sweeplab.data.digits import TEST_FRACTION, load_digits_pair  # scikit-learn

        d = load_digits_pair(cfg.digits, data_seed)
        X, y, X_test, y_test = d.X, d.y, d.X_test, d.y_test
        meta.update(source="sklearn", digits=list(cfg.digits), test_fraction=TEST_FRACTION)
    else:
        p = load_idx_pair(cfg.dataset, cfg.data_dir, cfg.digits)
        X, y, X_test, y_test = p.X, p.y, p.X_test, p.y_test
        meta.update(source={k: str(v) for k, v in p.files.items()}, digits=list(cfg.digits))
    meta["native_dim"] = int(X.shape[1])
    from sweeplab.data.preprocess import preprocess  # scikit-learn's PCA

    X, X_test, prep = preprocess(X, X_test, cfg.pca, cfg.standardize, data_seed)
    meta.update(prep)
    meta.update(feature_dim=int(X.shape[1]), n_train=int(X.shape[0]), n_test=int(X_test.shape[0]))
    log.debug(
        "loaded %s: %d train, %d test, %d features",
        cfg.dataset,
        meta["n_train"],
        meta["n_test"],
        meta["feature_dim"],
    )
    return Dataset(X=X, y=y, X_test=X_test, y_test=y_test, name=cfg.dataset, meta=meta)
