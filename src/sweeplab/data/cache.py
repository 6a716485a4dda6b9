"""Real datasets, loaded and preprocessed once, read back by every later run that shares them.

Loading a two-class task from MNIST-format files (decompressing ~50 MB of IDX) and
fitting its PCA (scikit-learn: ~1 s of imports a process) costs more than training a
deep linear network on it, and a grid's runs share a handful of tasks. The preprocessed
arrays and their ``meta`` are kept in :mod:`sweeplab.core.cache`, keyed by the bytes of
the source files (IDX) or the installed scikit-learn (its bundled digits), the classes,
the preprocessing settings, the data seed and :data:`VERSION`; a changed file is a new
key. Synthetic data is drawn in microseconds and is never cached.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.core import cache
from sweeplab.core.provenance import package_versions

VERSION = 1
"""Raised whenever loading or preprocessing computes something else."""

NAMESPACE = "datasets"
_READ_CHUNK = 1 << 20


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_identity(dataset: str, files: dict[str, Path] | None) -> dict[str, Any]:
    """What the raw data is: the files' digests, or the library that bundles it."""
    if files is not None:
        return {role: file_digest(path) for role, path in sorted(files.items())}
    return package_versions(("scikit-learn",))


def key(dataset: str, source: dict[str, Any], settings: dict[str, Any]) -> str:
    """The cache key of a preprocessed task."""
    return cache.content_key(NAMESPACE, VERSION, dataset, source, settings)


def load(k: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays (X, y, X_test, y_test) and meta stored under ``k``, or None."""
    return cache.load(NAMESPACE, k)


def store(k: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Keep a preprocessed task (best effort)."""
    cache.store(NAMESPACE, k, arrays, meta)
