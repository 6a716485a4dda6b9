"""Test-set metrics of a classifier and their summary across seeds.

:func:`classification_metrics` takes the true labels and the predicted class
probabilities (softmax outputs) and returns the headline metrics the agent can optimise
(the names :mod:`sweeplab.agent.goal` parses: ``accuracy``, ``f1_macro``, ``f1_micro``,
``precision``, ``recall``, ``roc_auc``, ``pr_auc``), the confusion matrix and a per-class
table, all from :mod:`sklearn.metrics`. The confusion matrix ``M`` has rows true and
columns predicted over every class ``0..K-1``; per class (Sokolova & Lapalme 2009, "A
systematic analysis of performance measures for classification tasks", Table 3)::

    precision_k = M_kk / sum_i M_ik     recall_k = M_kk / sum_j M_kj
    F1_k = 2 precision_k recall_k / (precision_k + recall_k)      (0 when undefined)

macro = the unweighted mean over all K classes; micro F1 pools the counts and, with one
label per sample, equals accuracy. ROC-AUC and PR-AUC (average precision) are one-vs-rest
per class from the probabilities, macro-averaged over the classes present in the labels:
a class absent from the test labels has no positives, so its curves are undefined and it
is left out of the mean (its table entry is ``None``), never counted as 0 or 1.

:func:`summarize` gives each metric's mean, sample standard deviation and 95% Student-t
interval across seeds (:func:`sweeplab.analysis.stats.t_interval`, the formula the
analysis tables use); with one seed the interval is NaN (there is no spread to
estimate) and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sweeplab.analysis.stats import CONFIDENCE, t_interval

__all__ = ["HEADLINE", "classification_metrics", "seed_statistics", "summarize"]

HEADLINE = ("accuracy", "f1_macro", "f1_micro", "precision", "recall", "roc_auc", "pr_auc")
"""The metrics a goal can target; ``precision`` and ``recall`` are macro averages."""


def classification_metrics(y_true: np.ndarray, probs: np.ndarray,
                           class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of predictions ``argmax(probs)`` against ``y_true`` (see module docstring).

    ``probs`` is (n, K) with rows summing to 1. Returns ``{"metrics": {name: float},
    "confusion_matrix": (K, K) int array, "per_class": [{class, precision, recall, f1,
    support, roc_auc, pr_auc}]}``; undefined AUCs are NaN in ``metrics`` and ``None`` in
    the table.
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    if y_true.shape != (n,):
        raise ValueError(f"{y_true.shape[0]} labels for {n} rows of probabilities")
    if n == 0:
        raise ValueError("no samples to score")
    y_pred = probs.argmax(axis=1)
    labels = np.arange(k)
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0)
    roc = np.full(k, np.nan)
    ap = np.full(k, np.nan)
    for c in labels:
        positive = y_true == c
        if positive.any() and not positive.all():
            roc[c] = skm.roc_auc_score(positive, probs[:, c])
            ap[c] = skm.average_precision_score(positive, probs[:, c])
    present = ~np.isnan(roc)
    metrics = {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1.mean()),
        "f1_micro": float(skm.f1_score(y_true, y_pred, labels=labels, average="micro",
                                       zero_division=0)),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "roc_auc": float(roc[present].mean()) if present.any() else math.nan,
        "pr_auc": float(ap[present].mean()) if present.any() else math.nan,
    }
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    table = [{"class": names[c], "precision": float(precision[c]), "recall": float(recall[c]),
              "f1": float(f1[c]), "support": int(support[c]),
              "roc_auc": None if np.isnan(roc[c]) else float(roc[c]),
              "pr_auc": None if np.isnan(ap[c]) else float(ap[c])} for c in range(k)]
    return {"metrics": metrics, "confusion_matrix": cm, "per_class": table}


def seed_statistics(values: Sequence[float], level: float = CONFIDENCE) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and the Student-t interval of the mean of ``values``.

    Non-finite values (an AUC undefined for a seed) are left out; ``n`` counts the rest.
    Fewer than two values give NaN std and interval, with a ``note`` saying why.
    """
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": 0, "note": "no finite value"}
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    low, high = t_interval(mean, std, n, level)
    out = {"mean": mean, "std": std, "ci_low": float(low), "ci_high": float(high), "n": n}
    return {**out, "note": "one seed: no interval"} if n == 1 else out


def summarize(per_seed: Sequence[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """``{metric: seed_statistics(values over seeds)}`` for every metric of the first seed."""
    if not per_seed:
        return {}
    return {name: seed_statistics([m.get(name, math.nan) for m in per_seed])
            for name in per_seed[0]}
