"""Shared fixtures: a real MNIST-format folder made from Debian's Fashion-MNIST files."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sweeplab.data import read_idx, write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def pytest_configure(config: pytest.Config) -> None:
    """Keep the tests' cached results (sweeplab.core.cache) out of the user's cache: one
    fresh folder per test session, inherited by every subprocess a test starts."""
    if "SWEEPLAB_CACHE" not in os.environ:
        os.environ["SWEEPLAB_CACHE"] = _MADE_CACHE[0] = tempfile.mkdtemp(
            prefix="sweeplab-test-cache-")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the test session's cache folder."""
    if _MADE_CACHE[0]:
        shutil.rmtree(_MADE_CACHE[0], ignore_errors=True)


_MADE_CACHE: list[str | None] = [None]


@pytest.fixture(scope="session")
def mnist_format_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-layout ``MNIST/raw`` folder of real IDX files (a Fashion-MNIST subset).

    MNIST itself cannot be downloaded here; these are real images in the same format.
    """
    if not FASHION_DIR.is_dir():
        pytest.skip(f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist")
    root = tmp_path_factory.mktemp("mnist_root")
    raw = root / "MNIST" / "raw"
    for split, n in (("train", 3000), ("t10k", 600)):
        images = read_idx(FASHION_DIR / f"{split}-images-idx3-ubyte.gz")[:n]
        labels = read_idx(FASHION_DIR / f"{split}-labels-idx1-ubyte.gz")[:n]
        write_idx(np.ascontiguousarray(images), raw / f"{split}-images-idx3-ubyte.gz")
        write_idx(np.ascontiguousarray(labels), raw / f"{split}-labels-idx1-ubyte.gz")
    return root
