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
    ("f1_micro", r"micro[\s_-]*(?:averaged?[\s_-]*)?f1|f1[\s_-]*(?:score[\s_-]*)?\(?micro"),
    ("f1_macro", r"macro[\s_-]*(?:averaged?[\s_-]*)?f1|f1[\s_-]*(?:score[\s_-]*)?\(?macro"
                 r"|\bf1\b(?:[\s_-]*score)?"),
    ("pr_auc", r"\bpr[\s_-]*auc|precision[\s_-]*recall[\s_-]*(?:curve[\s_-]*)?(?:auc|area)"
               r"|average[\s_-]*precision|auprc|auc[\s_-]*pr\b"),
    ("roc_auc", r"roc[\s_-]*auc|auroc|\bauc\b"),
    ("precision", r"precision"),
    ("recall", r"recall"),
    ("accuracy", r"accuracy|\bacc\b"),
)
"""Name -> pattern. Where two patterns match at the same place ("f1 micro" also starts
"f1"), the one listed first wins, so the specific forms come first."""
ERROR_RATE = r"\berror(?:[\s_-]*rate)?\b|\bmisclassification(?:[\s_-]*rate)?\b"
"""An error-rate goal ("error below 5%") is read as accuracy above 1 - that level."""
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
    """The name whose pattern matches earliest in ``text`` (the first listed on a tie)."""
    hits = [(m.start(), order, name) for order, (name, pat) in enumerate(table)
            for m in [re.search(pat, text)] if m]
    return min(hits)[2] if hits else None


_LEVEL = (r"(?:>=?|≥|=|at least|above|over|of|targeting|target|reach(?:ing)?|beyond"
          r"|exceed(?:ing)?)")
_METRIC_WORDS = r"(?:accuracy|acc|f1(?:[\s_-]*score)?|auc|auroc|auprc|precision|recall)"


def _target(text: str) -> float | None:
    """A percentage (85%, >= 85 %, 85 percent) or a fraction (0.85) stated as the goal's
    level. A fraction next to a metric's name comes first ("accuracy of 0.9", "F1 >= .9",
    "0.9 accuracy"), then one after a word such as "targeting", ">=" or "of"."""
    percent = re.search(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", text)
    if percent:
        return float(percent.group(1)) / 100
    number = r"(0?\.\d+|1\.0+)\b"
    fraction = (re.search(rf"{_METRIC_WORDS}\s*(?:{_LEVEL}\s*)?:?\s*{number}", text)
                or re.search(rf"(?<![\w.]){number}\s*{_METRIC_WORDS}", text)
                or re.search(rf"{_LEVEL}\s*{number}", text))
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
    if metric is None and target is not None and re.search(ERROR_RATE, lowered):
        metric, target = "accuracy", round(1.0 - target, 10)  # error <= e  <=>  accuracy >= 1 - e
    if metric is None and target is not None:
        metric = "accuracy"
    if target is not None and not 0 < target <= 1:
        raise ConfigError("goal", text, f"the target {target:g} is not a level a metric can "
                          "reach (a fraction in (0, 1] or a percentage up to 100%)")
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
