"""Read a research goal stated in words: dataset, metric, target, model family, size.

``"Design a small CNN for Fashion-MNIST targeting >85% accuracy"`` ->
``Goal(dataset="fashion-mnist", metric="accuracy", target=0.85, family="cnn",
max_params=100_000)``. A goal without a dataset or a target is refused with a one-line
error that says what was understood and what is missing, so the loop never optimises
something the researcher did not ask for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sweeplab.errors import ConfigError

DATASETS = (
    ("fashion-mnist", r"fashion[\s_-]*mnist|f-?mnist"),
    ("cifar-10", r"cifar[\s_-]*10|cifar"),
    ("digits", r"(?:sklearn|scikit-learn)?\s*digits|8x8 digits"),
    ("mnist", r"mnist"),
)
"""Name -> pattern, most specific first (``fashion-mnist`` before ``mnist``)."""
METRICS = (
    ("f1_macro", r"macro[\s_-]*f1|f1[\s_-]*macro|f1(?:[\s_-]*score)?"),
    ("f1_micro", r"micro[\s_-]*f1|f1[\s_-]*micro"),
    ("roc_auc", r"roc[\s_-]*auc|auroc|\bauc\b"),
    ("pr_auc", r"pr[\s_-]*auc|average precision|auprc"),
    ("precision", r"precision"),
    ("recall", r"recall"),
    ("accuracy", r"accuracy|\bacc\b"),
)
FAMILIES = (("cnn", r"\bcnn\b|convolutional|conv\s*net|convnet"),
            ("mlp", r"\bmlp\b|multi-?layer perceptron|fully[\s-]connected|dense network"))
SMALL = r"\b(?:small|tiny|compact|lightweight|little)\b"
SMALL_MAX_PARAMS = 100_000
"""What "small" means when the goal gives no number: at most 100k parameters."""


@dataclass(frozen=True)
class Goal:
    """What the agent optimises: ``metric`` (higher is better) on ``dataset`` up to ``target``."""

    text: str
    dataset: str
    metric: str
    target: float
    family: str | None = None
    max_params: int | None = None

    def describe(self) -> str:
        """One line: what was understood."""
        parts = [f"dataset={self.dataset}", f"metric={self.metric}", f"target={self.target:g}"]
        if self.family:
            parts.append(f"family={self.family}")
        if self.max_params:
            parts.append(f"max_params={self.max_params:,}")
        return ", ".join(parts)


def _first(text: str, table: tuple[tuple[str, str], ...]) -> str | None:
    hits = [(m.start(), name) for name, pat in table for m in [re.search(pat, text)] if m]
    return min(hits)[1] if hits else None


def _target(text: str) -> float | None:
    """A percentage (85%, >= 85 %) or a fraction (0.85) stated as the goal's level."""
    percent = re.search(r"(?:>=?|≥|at least|above|over|of|targeting|reach(?:ing)?)?\s*"
                        r"(\d{1,3}(?:\.\d+)?)\s*%", text)
    if percent:
        value = float(percent.group(1)) / 100
        return value if 0 < value <= 1 else None
    fraction = re.search(r"(?:>=?|≥|at least|above|over|of|targeting|reach(?:ing)?)\s*"
                         r"(0?\.\d+|1\.0+)\b", text)
    return float(fraction.group(1)) if fraction else None


def _max_params(text: str) -> int | None:
    match = re.search(r"(?:under|below|at most|fewer than|less than|<=?|≤)\s*"
                      r"(\d+(?:[.,]\d+)?)\s*([km])?\s*param", text)
    if match:
        number = float(match.group(1).replace(",", ""))
        scale = {"k": 1_000, "m": 1_000_000}.get(match.group(2) or "", 1)
        return int(number * scale)
    return SMALL_MAX_PARAMS if re.search(SMALL, text) else None


def parse_goal(text: str) -> Goal:
    """The :class:`Goal` stated in ``text``; :class:`ConfigError` naming what is missing."""
    lowered = " ".join(text.lower().split())
    dataset, metric = _first(lowered, DATASETS), _first(lowered, METRICS)
    target, family, max_params = _target(lowered), _first(lowered, FAMILIES), _max_params(lowered)
    if metric is None and target is not None:
        metric = "accuracy"
    missing = [what for what, value in (("a dataset", dataset), ("a target", target))
               if value is None]
    if missing:
        understood = ", ".join(f"{k}={v}" for k, v in (
            ("dataset", dataset), ("metric", metric), ("target", target), ("family", family),
            ("max_params", max_params)) if v is not None) or "nothing"
        raise ConfigError(
            "goal", text,
            f"could not find {' and '.join(missing)} (understood: {understood}); name a "
            "dataset (digits, mnist, fashion-mnist, cifar-10) and a target such as "
            "'>85% accuracy' or 'macro F1 of 0.9'")
    return Goal(text=text, dataset=dataset, metric=metric, target=target, family=family,
                max_params=max_params)
