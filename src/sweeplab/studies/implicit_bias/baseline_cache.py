"""The baselines of a dataset, solved once and read back by every later run that shares it.

A run's baselines (the l2 SVM, logistic regression, the lp max-margin direction) depend
only on its data and ``p``, ``logreg_C`` and the logistic seed; solving them is cheap,
but the solvers' imports (scikit-learn pulls in scipy.stats and pandas, then cvxpy) cost
about a second per process, more than the run's training. The
:mod:`sweeplab.core.cache` keeps each solved set by content hash, so a second run on
the same data (another learning rate, depth or potential with the same ``p``, a
re-run, a resumed grid, another grid) reads the directions back bit for bit and imports
none of the solvers.

The key holds the data's bytes, the settings, :data:`VERSION` (raised when the
baselines' code computes something else) and the installed versions of the libraries
that solve them, so an upgrade of a solver is a cache miss, not a stale answer.
"""

from __future__ import annotations

import numpy as np

from sweeplab.core import cache
from sweeplab.core.provenance import package_versions

VERSION = 1
"""Raised whenever baselines.py or shared_baselines.py changes what they compute."""

NAMESPACE = "implicit-bias-baselines"

_SOLVER_PACKAGES = ("numpy", "scipy", "scikit-learn", "cvxpy", "clarabel", "ecos", "scs",
                    "osqp")


def solver_versions() -> dict[str, str | None]:
    """Installed versions of the packages the baselines are computed with (None: absent);
    looked up once per process (:func:`sweeplab.core.provenance.package_versions`)."""
    return package_versions(_SOLVER_PACKAGES)


def key(kind: str, X: np.ndarray, y: np.ndarray, **settings: object) -> str:
    """The cache key of baseline ``kind`` on ``(X, y)`` with ``settings``."""
    return cache.content_key(kind, VERSION, solver_versions(), settings,
                             np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64))


def load(k: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays and metadata stored under ``k``, or None."""
    return cache.load(NAMESPACE, k)


def store(k: str, arrays: dict[str, np.ndarray | None], meta: dict) -> None:
    """Store the non-None ``arrays`` and ``meta`` under ``k`` (best effort)."""
    cache.store(NAMESPACE, k, {n: a for n, a in arrays.items() if a is not None}, meta)
