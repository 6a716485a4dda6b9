"""Locate and load MNIST-format datasets (``mnist``, ``fashion-mnist``) from IDX files.

Both datasets ship as the same four IDX files (LeCun et al., http://yann.lecun.com/exdb/
mnist/; Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST", arXiv:1708.07747)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

each plain or gzip-compressed (``.gz``). sweeplab never downloads: it looks in a few
conventional folders and, when the files are not there, says where it looked and what
to pass. Search order for a data folder ``D``: ``D`` itself, torchvision's layout
(``D/MNIST/raw`` or ``D/FashionMNIST/raw``), then ``D/mnist`` or ``D/fashion-mnist``.
Without ``--data_dir`` the folders searched that way are ``$SWEEPLAB_DATA_DIR`` (if set)
and ``./data``; for Fashion-MNIST also ``/usr/share/datasets/fashion-mnist``, where
Debian's ``dataset-fashion-mnist`` package installs the files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sweeplab.data.idx import IdxFormatError, read_idx
from sweeplab.data.pairs import select_pair
from sweeplab.errors import ConfigError, DataNotFoundError

__all__ = [
    "DATA_DIR_ENV",
    "IDX_FILES",
    "PairSplits",
    "candidate_dirs",
    "load_idx_images",
    "load_idx_pair",
    "locate_idx_files",
]

DATA_DIR_ENV = "SWEEPLAB_DATA_DIR"
"""Environment variable naming a default data folder (used when no data_dir is given)."""

IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""Role -> standard file name (without ``.gz``) of the four IDX files."""

_TORCHVISION_SUBDIR = {"mnist": Path("MNIST/raw"), "fashion-mnist": Path("FashionMNIST/raw")}
_SYSTEM_DIRS = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")]}
"""Folders where an OS package installs a dataset (Debian: dataset-fashion-mnist)."""


class PairSplits(NamedTuple):
    """A two-class task read from IDX files: pixels in [0, 1], labels in {-1, +1}.

    ``X``/``X_test`` are float64, shape (n, rows*cols); ``files`` maps each role of
    :data:`IDX_FILES` to the file it was read from.
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    files: dict[str, Path]


def _check_name(name: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is an MNIST-format dataset."""
    if name not in _TORCHVISION_SUBDIR:
        raise ConfigError("dataset", name, "MNIST-format datasets: mnist, fashion-mnist")


def candidate_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders searched, in order, for dataset ``name`` (see the module docstring).

    With ``data_dir`` only that folder and its two conventional sub-folders are
    searched: an explicit choice should not silently fall back to data elsewhere.
    """
    _check_name(name)
    if data_dir is not None:
        roots = [Path(data_dir)]
    else:
        roots = [Path(env)] if (env := os.environ.get(DATA_DIR_ENV)) else []
        roots.append(Path("data"))
    dirs: list[Path] = []
    for root in roots:
        dirs += [root, root / _TORCHVISION_SUBDIR[name], root / name]
    if data_dir is None:
        dirs += _SYSTEM_DIRS.get(name, [])
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _find_in(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """Files of :data:`IDX_FILES` present in ``folder`` (plain preferred) and those missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, stem in IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(stem)
    return found, missing


def locate_idx_files(name: str, data_dir: str | os.PathLike[str] | None) -> dict[str, Path]:
    """Find the four IDX files of ``name``; return role -> path (see :data:`IDX_FILES`).

    The first folder of :func:`candidate_dirs` holding all four files wins (a plain file
    is preferred to its ``.gz`` twin: faster to read). Only file existence is checked,
    so this is cheap enough to run before any work starts. Raises
    :class:`DataNotFoundError` listing every folder searched, which files a partly
    filled folder lacks, and what to pass.
    """
    dirs = candidate_dirs(name, data_dir)
    partial: list[str] = []
    for folder in dirs:
        found, missing = _find_in(folder)
        if not missing:
            return found
        if found:
            partial.append(f"{folder} lacks {', '.join(m + '[.gz]' for m in missing)}")
    hint = (
        f"pass --data_dir DIR holding {', '.join(s + '[.gz]' for s in IDX_FILES.values())} "
        f"(torchvision's {_TORCHVISION_SUBDIR[name].as_posix()} layout works too)"
    )
    if data_dir is None:
        hint += f", or set {DATA_DIR_ENV}"
    if partial:
        hint = "; ".join(partial) + "; " + hint
    raise DataNotFoundError(name, [str(d) for d in dirs], hint)


def _images_and_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one split: images flattened to (n, rows*cols) uint8, labels (n,) integers.

    Checks the shapes agree so that a mismatched pair of files fails here, naming them.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise IdxFormatError(
            images_path, f"images need 3 dimensions (n, rows, cols), got shape {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise IdxFormatError(
            labels_path,
            f"labels of shape {labels.shape} do not match {images.shape[0]} images "
            f"in {images_path.name}",
        )
    return images.reshape(images.shape[0], -1), labels


def _to_unit_interval(pixels: np.ndarray) -> np.ndarray:
    """Pixels as float64 in [0, 1]: divide by 255 for the usual uint8 images."""
    X = pixels.astype(np.float64)
    if pixels.dtype == np.uint8:
        X /= 255.0
    return X


def load_idx_pair(
    name: str, data_dir: str | os.PathLike[str] | None, digits: tuple[int, int]
) -> PairSplits:
    """Load the train and test (t10k) splits of ``name`` restricted to classes ``digits``.

    Images are flattened and scaled to [0, 1] (float64); labels map ``digits[0] -> -1``
    and ``digits[1] -> +1``. File order is kept (no shuffling: the split is the official
    one, so it is the same whatever the seed).
    """
    files = locate_idx_files(name, data_dir)
    pix, labels = _images_and_labels(files["train_images"], files["train_labels"])
    X, y = select_pair(pix, labels, digits, str(files["train_labels"]))
    pix_t, labels_t = _images_and_labels(files["test_images"], files["test_labels"])
    X_t, y_t = select_pair(pix_t, labels_t, digits, str(files["test_labels"]))
    return PairSplits(_to_unit_interval(X), y, _to_unit_interval(X_t), y_t, files)


def load_idx_images(
    name: str, data_dir: str | os.PathLike[str] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every class of ``name``: train images, labels, test (t10k) images, labels.

    Images keep their (n, rows, cols) shape as uint8; labels are int64, file order kept.
    """
    _check_name(name)
    files = locate_idx_files(name, data_dir)
    splits = []
    for images, labels in (("train_images", "train_labels"), ("test_images", "test_labels")):
        pix, lab = _images_and_labels(files[images], files[labels])
        side = int(round(np.sqrt(pix.shape[1])))
        shape = (side, side) if side * side == pix.shape[1] else (pix.shape[1],)
        splits += [pix.reshape(pix.shape[0], *shape), lab.astype(np.int64)]
    return splits[0], splits[1], splits[2], splits[3]
