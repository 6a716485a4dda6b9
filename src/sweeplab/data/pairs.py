"""Binary tasks from multi-class data: keep two classes, label them -1 and +1.

Shared by the MNIST-format and scikit-learn digits loaders so both apply the one rule
stated in :class:`~sweeplab.data.config.DataConfig`: the first class of ``digits`` is
labelled -1, the second +1.
"""

from __future__ import annotations

import numpy as np

from sweeplab.errors import ConfigError

__all__ = ["select_pair", "sklearn_seed"]


def select_pair(
    X: np.ndarray, labels: np.ndarray, digits: tuple[int, int], where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``X`` whose label is one of ``digits``, with labels mapped to {-1, +1}.

    Returns ``(X_pair, y)`` with ``y`` float64: ``digits[0] -> -1``, ``digits[1] -> +1``.
    Order of the rows is kept. Raises :class:`ConfigError` on key ``digits`` when a class
    has no sample in this split (``where`` names the split or file), since a binary task
    with one class is meaningless.
    """
    a, b = digits
    labels = np.asarray(labels)
    for cls in (a, b):
        if not np.any(labels == cls):
            present = sorted(int(v) for v in np.unique(labels))
            raise ConfigError(
                "digits", [a, b], f"class {cls} has no sample in {where} (present: {present})"
            )
    keep = (labels == a) | (labels == b)
    y = np.where(labels[keep] == a, -1.0, 1.0).astype(np.float64)
    return X[keep], y


def sklearn_seed(seed: int) -> int:
    """Map any Python int to scikit-learn's accepted ``random_state`` range [0, 2**32).

    scikit-learn rejects negative seeds; reducing modulo 2**32 keeps every non-negative
    seed below 2**32 unchanged and still gives a deterministic value for the rest.
    """
    return int(seed) % (2**32)
