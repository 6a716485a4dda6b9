"""Test-set metrics of a classifier and their summary across seeds.

:func:`classification_metrics` takes the true labels and the predicted class
probabilities (softmax outputs) and returns the headline metrics the agent can optimise
(the names :mod:`sweeplab.agent.goal` parses: ``accuracy``, ``f1_macro``, ``f1_micro``,
``precision``, ``recall``, ``roc_auc``, ``pr_auc``), the confusion matrix and a per-class
table. Precision, recall and F1 come straight from the confusion matrix ``M`` (rows true,
columns predicted; Sokolova & Lapalme 2009, "A systematic analysis of performance
measures for classification tasks", Table 3)::

    precision_k = M_kk / sum_i M_ik     recall_k = M_kk / sum_j M_kj
    F1_k = 2 precision_k recall_k / (precision_k + recall_k)      (0 when undefined)

macro = the unweighted mean over all classes; micro F1 pools the counts and, with one
label per sample, equals accuracy. ROC-AUC and PR-AUC (average precision) are one-vs-rest
per class from the probabilities (scikit-learn's ``roc_auc_score`` and
``average_precision_score``), macro-averaged over the classes present in the labels: a
class absent from the test labels has no positives, so its curves are undefined and it
is left out of the mean (its table entry is ``None``), never counted as 0 or 1.

:func:`summarize` gives each metric's mean, sample standard deviation and 95% Student-t
interval across seeds: ``mean +- t_{0.975, n-1} s / sqrt(n)``; with one seed the
interval is NaN (there is no spread to estimate) and a note says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["HEADLINE", "classification_metrics", "summarize", "t_interval"]

HEADLINE = ("accuracy", "f1_macro", "f1_micro", "precision", "recall", "roc_auc", "pr_auc")
"""The metrics a goal can target; ``precision`` and ``recall`` are macro averages."""


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den is 0 (scikit-learn's ``zero_division=0``)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def classification_metrics(y_true: np.ndarray, probs: np.ndarray,
                           class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of predictions ``argmax(probs)`` against ``y_true`` (see module docstring).

    ``probs`` is (n, K) with rows summing to 1. Returns ``{"metrics": {name: float},
    "confusion_matrix": (K, K) int array, "per_class": [{class, precision, recall, f1,
    support, roc_auc, pr_auc}]}``; undefined AUCs are NaN in ``metrics`` and ``None`` in
    the table.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n, k = probs.shape
    if y_true.shape != (n,):
        raise ValueError(f"{y_true.shape[0]} labels for {n} rows of probabilities")
    y_pred = probs.argmax(axis=1)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    roc = np.full(k, np.nan)
    ap = np.full(k, np.nan)
    for c in range(k):
        positive = y_true == c
        if positive.any() and not positive.all():
            roc[c] = roc_auc_score(positive, probs[:, c])
            ap[c] = average_precision_score(positive, probs[:, c])
    present = ~np.isnan(roc)
    metrics = {
        "accuracy": float(tp.sum() / n) if n else math.nan,
        "f1_macro": float(f1.mean()),
        "f1_micro": float(tp.sum() / n) if n else math.nan,
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


def t_interval(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean, sample std (ddof=1) and the Student-t interval of the mean of ``values``.

    Non-finite values (an AUC undefined for a seed) are left out; ``n`` counts the rest.
    Fewer than two values give NaN std and interval, with a ``note`` saying why.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": 0, "note": "no finite value"}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan,
                "n": 1, "note": "one seed: no interval"}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def summarize(per_seed: Sequence[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """``{metric: t_interval(values over seeds)}`` for every metric of the first seed."""
    if not per_seed:
        return {}
    return {name: t_interval([m.get(name, math.nan) for m in per_seed]) for name in per_seed[0]}
