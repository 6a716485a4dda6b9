"""Fixtures for the data tests: the real Fashion-MNIST files and MNIST-format copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sweeplab.data.idx import read_idx, write_idx
from sweeplab.data.mnist import IDX_FILES

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's dataset-fashion-mnist package installs the real files."""


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    """The real Fashion-MNIST folder; skips (saying why) when it is not installed."""
    if not all((FASHION_DIR / f"{stem}.gz").is_file() for stem in IDX_FILES.values()):
        pytest.skip(
            f"real Fashion-MNIST files not found in {FASHION_DIR} "
            "(Debian package dataset-fashion-mnist)"
        )
    return FASHION_DIR


@pytest.fixture(scope="session")
def fashion_arrays(fashion_dir: Path) -> dict[str, np.ndarray]:
    """The four real Fashion-MNIST arrays, read once per session (role -> array)."""
    return {role: read_idx(fashion_dir / f"{stem}.gz") for role, stem in IDX_FILES.items()}


SUBSET_SIZES = {"train": 2000, "test": 500}
"""How many leading samples of each real split the MNIST-format copies keep."""


@pytest.fixture
def write_subset(
    fashion_arrays: dict[str, np.ndarray],
) -> Callable[..., dict[str, np.ndarray]]:
    """Factory: write the first samples of Fashion-MNIST as MNIST-format files in a folder.

    ``write_subset(folder, gz=True)`` writes the four standard file names (with or
    without ``.gz``) and returns the arrays written, so tests can compare what the loader
    reads with what was put there.
    """

    def write(folder: Path, gz: bool = True) -> dict[str, np.ndarray]:
        written = {}
        for role, stem in IDX_FILES.items():
            n = SUBSET_SIZES["train" if role.startswith("train") else "test"]
            written[role] = fashion_arrays[role][:n]
            write_idx(written[role], folder / (f"{stem}.gz" if gz else stem))
        return written

    return write


@pytest.fixture
def no_default_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty working folder without SWEEPLAB_DATA_DIR; returns that folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("SWEEPLAB_DATA_DIR", raising=False)
    return cwd
