"""Datasets: synthetic Gaussians, IDX files (MNIST format), scikit-learn digits, PCA.

Studies call :func:`load_dataset` with their :class:`DataConfig` and get a
:class:`Dataset` (float64 inputs, labels in {-1, +1}, a test set, provenance in
``meta``); the CLI calls :func:`check_dataset_available` before any work starts.
"""

from sweeplab.data.config import DataConfig
from sweeplab.data.dataset import Dataset, check_dataset_available, load_dataset
from sweeplab.data.idx import IdxFormatError, read_idx, write_idx

__all__ = [
    "DataConfig",
    "Dataset",
    "IdxFormatError",
    "check_dataset_available",
    "load_dataset",
    "read_idx",
    "write_idx",
]
