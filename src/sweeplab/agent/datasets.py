"""The agent's datasets: image tensors split train / validation / test, ready to train on.

:func:`load_dataset` returns an :class:`AgentData`: float32 images (N, C, H, W) with
pixels in [0, 1] (no mean/std standardisation, so every dataset is on the same scale),
int64 labels, the class names and a one-line description of where the data came from.

- ``digits``: scikit-learn's bundled 8x8 digits (1797 images, pixels 0..16, divided by
  16). No official split exists, so a seeded stratified one is drawn: 20% test, then
  ``val_fraction`` of the rest for validation.
- ``mnist``, ``fashion-mnist``: the four IDX files (found by
  :func:`sweeplab.data.mnist.locate_idx_files`); official train/test split, validation
  carved from train (seeded, stratified).
- ``cifar-10``: the "python version" pickle batches (Krizhevsky 2009,
  https://www.cs.toronto.edu/~kriz/cifar.html): ``data_batch_1..5`` and ``test_batch``,
  each a dict with ``b'data'`` (N, 3072) uint8, row-major, the 1024 red, then green, then
  blue pixels of each image, and ``b'labels'``; ``batches.meta`` names the classes.
- ``synthetic``: a seeded Gaussian-blob image task (each class a few coloured blobs at
  its own places, jittered, plus pixel noise), always labelled ``source="synthetic"``.

sweeplab never downloads. Missing files raise :class:`DataNotFoundError` saying where it
looked and what to pass; with ``allow_synthetic`` the synthetic task of the same shape
and class count stands in, and says so in ``source`` and ``description``: synthetic data
only as a labelled last resort.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sweeplab.data.pairs import sklearn_seed
from sweeplab.errors import ConfigError, DataNotFoundError

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "AgentData",
    "cifar_dirs",
    "load_dataset",
    "stratified_choice",
    "synthetic_images",
]

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar-10", "synthetic")
"""Names :func:`load_dataset` accepts."""

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
"""Fashion-MNIST's labels 0..9 (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747, Table 1)."""

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
"""CIFAR-10's labels 0..9, used when ``batches.meta`` is absent."""

SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 10), "mnist": ((1, 28, 28), 10),
    "fashion-mnist": ((1, 28, 28), 10), "cifar-10": ((3, 32, 32), 10),
    "synthetic": ((1, 16, 16), 10),
}
"""Name -> (input shape (C, H, W), number of classes)."""

DIGITS_TEST_FRACTION = 0.2
"""Share of the 1797 digits held out as the test set (there is no official split)."""

SYNTHETIC_SIZES = (3000, 1000)
"""Synthetic task: samples in the train pool (train + validation) and in the test set."""

CIFAR_DIR = "cifar-10-batches-py"
"""The folder the official CIFAR-10 python archive unpacks to."""


@dataclass(frozen=True, eq=False)
class AgentData:
    """A classification task split three ways; images float32 (N, C, H, W) in [0, 1]."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int
    class_names: list[str]
    name: str
    source: str
    description: str


def stratified_choice(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` samples drawn without replacement, keeping class shares.

    Class ``k`` with ``c_k`` of the ``N`` samples gets ``floor(n c_k / N)`` places, and
    the places left go to the largest remainders (Hamilton's method), so the counts add
    up to ``n`` exactly and no class is over-represented by more than one sample.
    """
    y = np.asarray(y)
    if not 0 <= n <= y.size:
        raise ValueError(f"cannot draw {n} of {y.size} samples")
    classes, counts = np.unique(y, return_counts=True)
    quota = n * counts / y.size
    take = np.floor(quota).astype(np.int64)
    rest = n - int(take.sum())
    if rest:
        order = np.argsort(-(quota - take), kind="stable")
        take[order[:rest]] += 1
    chosen = [rng.permutation(np.flatnonzero(y == k))[:t] for k, t in zip(classes, take)]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def _split_off(y: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, taken): ``n`` stratified samples taken, the rest kept."""
    taken = stratified_choice(y, n, rng)
    mask = np.ones(y.size, dtype=bool)
    mask[taken] = False
    return np.flatnonzero(mask), taken


def synthetic_images(shape: tuple[int, int, int], num_classes: int, n: int, seed: int,
                     prototype_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Gaussian-blob images (n, C, H, W) float32 in [0, 1] and balanced labels.

    Class ``k`` is 3 Gaussian blobs of width 0.12 of the side, each with its own centre
    (uniform in the middle 60% of the image) and colour (per channel uniform in
    [0.3, 1]); both drawn from ``prototype_seed`` so train and test share the classes.
    A sample jitters each centre by N(0, (0.06 side)^2), scales the blob by U(0.7, 1)
    and adds N(0, 0.15^2) pixel noise, clipped to [0, 1]; these come from ``seed``.
    """
    channels, height, width = shape
    side = min(height, width)
    proto = np.random.default_rng(sklearn_seed(prototype_seed))
    blobs = 3
    centres = proto.uniform(0.2, 0.8, size=(num_classes, blobs, 2)) * (height, width)
    colours = proto.uniform(0.3, 1.0, size=(num_classes, blobs, channels))
    rng = np.random.default_rng(sklearn_seed(seed))
    labels = rng.permutation(np.arange(n) % num_classes).astype(np.int64)
    centre = centres[labels] + rng.normal(0.0, 0.06 * side, size=(n, blobs, 2))
    scale = rng.uniform(0.7, 1.0, size=(n, blobs, 1))
    rows = np.arange(height)[None, None, :, None]
    cols = np.arange(width)[None, None, None, :]
    dist2 = (rows - centre[..., 0, None, None]) ** 2 + (cols - centre[..., 1, None, None]) ** 2
    bumps = np.exp(-dist2 / (2 * (0.12 * side) ** 2))           # (n, blobs, H, W)
    images = np.einsum("nbhw,nbc->nchw", bumps, colours[labels] * scale)
    images += rng.normal(0.0, 0.15, size=images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels


def _check_args(name: str, max_train: int | None, val_fraction: float) -> None:
    """Refuse bad arguments before any file is read."""
    if name not in DATASETS:
        raise ConfigError("dataset", name, "allowed values are " + ", ".join(DATASETS))
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError("val_fraction", val_fraction, "must lie strictly between 0 and 1")
    classes = SHAPES[name][1]
    if max_train is not None and max_train < classes:
        raise ConfigError("max_train", max_train,
                          f"must be at least the number of classes ({classes})")


def _digits() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """All 1797 digits as (n, 1, 8, 8) uint8 0..16, labels, names and origin."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)[:, None]
    return images, np.asarray(bunch.target, dtype=np.int64), [str(d) for d in range(10)], \
        "scikit-learn's bundled 8x8 digits (UCI optdigits)"


def _idx(name: str, data_dir: str | Path | None) -> tuple[np.ndarray, ...]:
    """Official train/test images (n, 1, 28, 28) uint8 and labels, and the folder read."""
    from sweeplab.data.mnist import load_idx_images, locate_idx_files

    folder = locate_idx_files(name, data_dir)["train_images"].parent
    x, y, xt, yt = load_idx_images(name, data_dir)
    return x[:, None], y, xt[:, None], yt, folder


def cifar_dirs(data_dir: str | Path | None) -> list[Path]:
    """Folders searched for the CIFAR-10 batches: each root and its ``cifar-10-batches-py``.

    Roots: ``data_dir`` alone when given; else ``$SWEEPLAB_DATA_DIR`` (if set) and
    ``./data``, as for MNIST.
    """
    from sweeplab.data.mnist import DATA_DIR_ENV

    if data_dir is not None:
        roots = [Path(data_dir)]
    else:
        roots = [Path(env)] if (env := os.environ.get(DATA_DIR_ENV)) else []
        roots.append(Path("data"))
    dirs: list[Path] = []
    for root in roots:
        for d in (root, root / CIFAR_DIR, root / "cifar-10" / CIFAR_DIR):
            if d not in dirs:
                dirs.append(d)
    return dirs


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="bytes")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch: images (n, 3, 32, 32) uint8 and labels int64; a bad file names itself."""
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError) as exc:
        raise ConfigError("dataset", "cifar-10", f"{path} is not a CIFAR-10 python batch "
                          "(needs b'data' and b'labels')") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or labels.shape != (data.shape[0],):
        raise ConfigError("dataset", "cifar-10", f"{path}: data of shape {data.shape} and "
                          f"{labels.shape[0]} labels; expected (n, 3072) and n labels")
    return data.reshape(-1, 3, 32, 32), labels


def _cifar(data_dir: str | Path | None) -> tuple[np.ndarray, ...]:
    """Official train (5 batches) and test batch, class names and the folder read."""
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    dirs = cifar_dirs(data_dir)
    for folder in dirs:
        if all((folder / n).is_file() for n in names):
            break
    else:
        hint = (f"pass --data_dir DIR holding {', '.join(names)} (and batches.meta), or its "
                f"{CIFAR_DIR} folder: the unpacked CIFAR-10 python version")
        raise DataNotFoundError("cifar-10", [str(d) for d in dirs], hint)
    parts = [_cifar_batch(folder / n) for n in names[:5]]
    xt, yt = _cifar_batch(folder / "test_batch")
    classes = list(CIFAR10_CLASSES)
    if (folder / "batches.meta").is_file():
        meta = _unpickle(folder / "batches.meta").get(b"label_names")
        if meta:
            classes = [m.decode() if isinstance(m, bytes) else str(m) for m in meta]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return x, y, xt, yt, classes, folder


def _tensors(x: np.ndarray, scale: float) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) / np.float32(scale))


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _real(name: str, data_dir: str | Path | None, rng: np.random.Generator
          ) -> tuple[Arrays, list[str], float, str]:
    """Train pool and test arrays of a real dataset, class names, pixel scale, origin."""
    if name == "digits":
        x_all, y_all, class_names, origin = _digits()
        rest, test = _split_off(y_all, round(DIGITS_TEST_FRACTION * y_all.size), rng)
        arrays = (x_all[rest], y_all[rest], x_all[test], y_all[test])
        return arrays, class_names, 16.0, origin + ", seeded stratified split"
    if name == "cifar-10":
        x, y, xt, yt, class_names, folder = _cifar(data_dir)
        return (x, y, xt, yt), class_names, 255.0, \
            f"python batches in {folder}, official train/test split"
    x, y, xt, yt, folder = _idx(name, data_dir)
    names = list(FASHION_MNIST_CLASSES) if name == "fashion-mnist" else \
        [str(d) for d in range(10)]
    return (x, y, xt, yt), names, 255.0, f"IDX files in {folder}, official train/test split"


def _synthetic(name: str, seed: int, max_train: int | None, val_fraction: float
               ) -> tuple[Arrays, list[str], float, str]:
    """The Gaussian-blob task with ``name``'s shape and class count (see SHAPES)."""
    shape, classes = SHAPES[name]
    n_pool, n_test = SYNTHETIC_SIZES
    if max_train is not None:
        n_pool = max_train + int(np.ceil(max_train * val_fraction / (1 - val_fraction)))
    x, y = synthetic_images(shape, classes, max(n_pool, 2 * classes), seed=seed)
    xt, yt = synthetic_images(shape, classes, n_test, seed=seed + 1)
    names = [f"blob {k}" for k in range(classes)]
    return (x, y, xt, yt), names, 1.0, "seeded Gaussian-blob images"


def load_dataset(name: str, data_dir: str | Path | None = None, seed: int = 0,
                 max_train: int | None = None, val_fraction: float = 0.1,
                 allow_synthetic: bool = False) -> AgentData:
    """The task ``name`` split train / validation / test (see the module docstring).

    ``seed`` fixes every random choice (the digits split, the validation set, the
    subsample). ``max_train`` caps the training set by a seeded stratified subsample so a
    CPU evaluation stays quick; the validation set is then cut in the same proportion
    (``val_fraction`` of train + validation) so it stays cheap too. The test set is never
    cut: it is what results are reported on. Raises :class:`ConfigError` for a bad
    argument and :class:`DataNotFoundError` for missing files unless ``allow_synthetic``.
    """
    _check_args(name, max_train, val_fraction)
    rng = np.random.default_rng(sklearn_seed(seed))
    source, note = "real", ""
    if name == "synthetic":
        arrays, class_names, scale, origin = _synthetic(name, seed, max_train, val_fraction)
        source = "synthetic"
    else:
        try:
            arrays, class_names, scale, origin = _real(name, data_dir, rng)
        except DataNotFoundError as exc:
            if not allow_synthetic:
                raise
            arrays, class_names, scale, origin = _synthetic(name, seed, max_train, val_fraction)
            source = "synthetic"
            note = (f"SYNTHETIC stand-in for {name}, synthetic data only as a labelled last "
                    f"resort (its files were not found: {exc}); ")
    x, y, xt, yt = arrays
    classes = len(class_names)
    for labels in (y, yt):
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise ConfigError("dataset", name, f"labels must lie in 0..{classes - 1}, found "
                              f"{labels.min()}..{labels.max()} ({origin})")
    train, val = _split_off(y, max(1, round(val_fraction * y.size)), rng)
    cut = ""
    if max_train is not None and max_train < train.size:
        train = train[stratified_choice(y[train], max_train, rng)]
        n_val = max(int(np.ceil(max_train * val_fraction / (1 - val_fraction))), classes)
        if n_val < val.size:
            val = val[stratified_choice(y[val], n_val, rng)]
        cut = f" (train subsampled to max_train={max_train})"
    shape = tuple(int(d) for d in x.shape[1:])
    description = (f"{note}{name}: {origin} (seed {seed}); {train.size} train / {val.size} "
                   f"val / {yt.size} test{cut}, {'x'.join(map(str, shape))}, "
                   f"{classes} classes")
    return AgentData(
        x_train=_tensors(x[train], scale), y_train=torch.from_numpy(y[train].copy()),
        x_val=_tensors(x[val], scale), y_val=torch.from_numpy(y[val].copy()),
        x_test=_tensors(xt, scale), y_test=torch.from_numpy(np.asarray(yt, np.int64).copy()),
        input_shape=shape, num_classes=classes, class_names=class_names, name=name,
        source=source, description=description)
