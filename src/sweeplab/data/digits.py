"""scikit-learn's bundled 8x8 digits as a two-class task (offline, no files to fetch).

The data are the UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin &
Kaynak 1998) as shipped by :func:`sklearn.datasets.load_digits`: 1797 images, 64 pixels
with integer values 0..16. It has no official split, so one is drawn: stratified (both
classes keep their proportion) with a test fraction of 0.25, seeded by the data seed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sweeplab.data.pairs import select_pair, sklearn_seed

__all__ = ["DIGITS_MAX_PIXEL", "TEST_FRACTION", "DigitsSplits", "load_digits_pair"]

TEST_FRACTION = 0.25
"""Share of the pair's samples held out as the test set."""

DIGITS_MAX_PIXEL = 16.0
"""Largest pixel value of the 8x8 digits (4x4 blocks of 32x32 bitmaps counted)."""


class DigitsSplits(NamedTuple):
    """A two-class digits task: pixels in [0, 1] (float64), labels in {-1, +1}.

    ``index``/``index_test`` are the rows of ``load_digits()`` each sample came from, so
    the split can be audited (and the two sets shown to be disjoint).
    """

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    index: np.ndarray
    index_test: np.ndarray


def load_digits_pair(digits: tuple[int, int], seed: int) -> DigitsSplits:
    """The digits ``digits[0]`` (-> -1) and ``digits[1]`` (-> +1), split train/test.

    Pixels are divided by 16 to lie in [0, 1]. The split is stratified on the label with
    ``test_size=0.25`` and ``random_state`` derived from ``seed``: the same seed gives the
    same split, and swapping the two classes only flips the labels.
    """
    bunch = load_digits()
    X_all = np.asarray(bunch.data, dtype=np.float64) / DIGITS_MAX_PIXEL
    rows = np.arange(X_all.shape[0])
    rows_pair, y = select_pair(rows, bunch.target, digits, "scikit-learn's load_digits")
    # Stratify on the original class, not on +-1, so (a, b) and (b, a) give the same split.
    idx, idx_test, y_tr, y_te = train_test_split(
        rows_pair,
        y,
        test_size=TEST_FRACTION,
        stratify=bunch.target[rows_pair],
        random_state=sklearn_seed(seed),
    )
    return DigitsSplits(X_all[idx], y_tr, X_all[idx_test], y_te, idx, idx_test)
