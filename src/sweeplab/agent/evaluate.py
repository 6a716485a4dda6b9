"""Quick but complete evaluation of one candidate: train over seeds, score, summarise.

Training (:mod:`sweeplab.agent.training`) seeds torch, builds a fresh model per seed and
trains it with the candidate's :class:`~sweeplab.agent.space.TrainSpec`, with early
stopping on the validation loss, keeping the best epoch's weights. Scoring is this
module's own: from a model's logits on the validation and test inputs, :func:`score_seed`
computes the validation loss and accuracy and every test metric
(:mod:`sweeplab.agent.metrics`) against labels it holds; the curve is read for the best
epoch, overfitting and the convergence epoch (:mod:`sweeplab.agent.curves`); across seeds
every metric gets its mean, std and 95% Student-t interval.

Two ways in: :func:`evaluate` trains a model that trusted code builds (a callable), in
this process (its seeds together where the batched trainer can:
:mod:`sweeplab.agent.multiseed`); the agent's candidates go through
:mod:`sweeplab.agent.candidate`, which trains and predicts in the sandbox and hands the
logits to :func:`score_seed`, so the numbers the agent relies on are computed here,
never reported by the candidate. A run that cannot be trained (no finite epoch, wrong
output) raises :class:`EvaluationError` (a ``RuntimeError``), so the agent records the
candidate as failed rather than stopping.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_softmax
from torch import nn

from sweeplab.agent.batching import BATCH_MODES, describe
from sweeplab.agent.curves import (
    CONVERGENCE_TOLERANCE,
    best_epoch,
    confusion_figure,
    convergence_epoch,
    learning_curve_figure,
    overfitting,
)
from sweeplab.agent.datasets import AgentData
from sweeplab.agent.metrics import classification_metrics, summarize
from sweeplab.agent.space import TrainSpec
from sweeplab.agent.training import (
    EVAL_BATCH,
    SGD_MOMENTUM,
    TRAIN_EVAL_MAX,
    TrainingError,
    predict,
)
from sweeplab.errors import SweeplabError

__all__ = ["EVAL_BATCH", "TRAIN_EVAL_MAX", "Evaluation", "EvaluationError", "SeedResult",
           "confusion_title", "evaluate", "jsonable", "score_seed", "summarise_seeds"]

CURVE_NOTE = ("the curve (train and validation loss and accuracy per epoch) is what the "
              "training reported; the metrics are the agent's, from the logits of the "
              "returned weights")

class EvaluationError(SweeplabError, RuntimeError):
    """A candidate could not be evaluated (not a model, wrong output, diverged)."""


@dataclass
class SeedResult:
    """One seed's training run and test metrics (best-validation weights).

    ``y_true`` and ``probs`` (test labels and softmax probabilities, float64) let a caller
    recompute any metric; they stay out of :meth:`Evaluation.to_dict`.
    """

    seed: int
    metrics: dict[str, float]
    curve: list[dict[str, float]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    stopped_by_time: bool
    diverged: bool
    overfitting: bool
    convergence_epoch: int
    seconds: float
    confusion_matrix: np.ndarray
    per_class: list[dict[str, Any]]
    y_true: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)

    @property
    def y_pred(self) -> np.ndarray:
        """Predicted test classes: the argmax of the probabilities."""
        return self.probs.argmax(axis=1)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the predictions, JSON-able (NaN -> None)."""
        keep = {k: v for k, v in self.__dict__.items() if k not in ("y_true", "probs")}
        return jsonable(keep)


@dataclass
class Evaluation:
    """A candidate's evaluation over seeds; ``aggregate`` is what the agent scores.

    ``aggregate[metric]`` holds ``mean, std, ci_low, ci_high, n`` (95% Student-t) for the
    test metrics, ``test_loss``, and the best-epoch ``val_loss``/``val_accuracy``.
    ``confusion_matrix`` is summed over seeds; ``per_class`` averages each class's
    metrics over seeds; ``plots`` are the PNG file names relative to ``out_dir``.
    """

    per_seed: list[SeedResult]
    aggregate: dict[str, dict[str, Any]]
    confusion_matrix: np.ndarray
    per_class: list[dict[str, Any]]
    plots: list[str]
    data: dict[str, Any]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: arrays as lists, NaN and infinities as None."""
        return jsonable({
            "per_seed": [s.to_dict() for s in self.per_seed], "aggregate": self.aggregate,
            "confusion_matrix": self.confusion_matrix, "per_class": self.per_class,
            "plots": self.plots, "data": self.data, "settings": self.settings})


def jsonable(value: Any) -> Any:
    """``value`` with numpy arrays/scalars as Python lists/numbers and NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def confusion_title(n_seeds: int, summed: np.ndarray) -> str:
    """The title of a confusion matrix summed over ``n_seeds`` seeds."""
    n_test = int(np.asarray(summed).sum()) // max(n_seeds, 1)
    return (f"Test confusion matrix, summed over {n_seeds} seed"
            f"{'s' if n_seeds > 1 else ''} ({n_seeds} x {n_test})")


def _mean_per_class(results: Sequence[SeedResult]) -> list[dict[str, Any]]:
    """Each class's precision/recall/F1/AUCs averaged over seeds (None where undefined)."""
    table = []
    for rows in zip(*(r.per_class for r in results)):
        entry: dict[str, Any] = {"class": rows[0]["class"], "support": rows[0]["support"]}
        for key in ("precision", "recall", "f1", "roc_auc", "pr_auc"):
            values = [row[key] for row in rows if row[key] is not None]
            entry[key] = float(np.mean(values)) if values else None
        table.append(entry)
    return table


def _log_probs(logits: np.ndarray, what: str) -> np.ndarray:
    """Log-softmax (float64) of (n, K) logits; :class:`EvaluationError` if any is not finite."""
    logits = np.asarray(logits, dtype=np.float64)
    if not np.isfinite(logits).all():
        raise EvaluationError(f"the model's {what} outputs are not all finite")
    return log_softmax(logits, axis=1)


def score_seed(report: dict[str, Any], val_logits: np.ndarray, test_logits: np.ndarray,
               data: AgentData, patience: int) -> SeedResult:
    """One seed's result from its training ``report`` (seed, curve, epochs run, early
    stop, time and divergence flags, seconds) and the model's logits on the validation
    and test inputs: every metric is computed here, from ``data``'s labels.

    Validation: mean cross-entropy and accuracy; test: the metrics of
    :func:`~sweeplab.agent.metrics.classification_metrics` on the softmax
    probabilities, and the mean cross-entropy (``test_loss``), all in float64.
    """
    y_val, y_test = data.y_val.numpy(), data.y_test.numpy()
    val, test = _log_probs(val_logits, "validation"), _log_probs(test_logits, "test")
    if val.shape != (y_val.size, data.num_classes) or test.shape != (y_test.size,
                                                                     data.num_classes):
        raise EvaluationError(f"logits of shapes {val.shape} and {test.shape}; expected "
                              f"({y_val.size}, {data.num_classes}) and ({y_test.size}, "
                              f"{data.num_classes})")
    probs = np.exp(test)
    scored = classification_metrics(y_test, probs, data.class_names)
    curve = report["curve"]
    metrics = {**scored["metrics"],
               "test_loss": float(-test[np.arange(y_test.size), y_test].mean()),
               "val_loss": float(-val[np.arange(y_val.size), y_val].mean()),
               "val_accuracy": float((val.argmax(axis=1) == y_val).mean())}
    return SeedResult(
        seed=int(report["seed"]), metrics=metrics, curve=curve, best_epoch=best_epoch(curve),
        epochs_run=len(curve), stopped_early=bool(report["stopped_early"]),
        stopped_by_time=bool(report["stopped_by_time"]), diverged=bool(report["diverged"]),
        overfitting=overfitting(curve, patience), convergence_epoch=convergence_epoch(curve),
        seconds=float(report["seconds"]), confusion_matrix=scored["confusion_matrix"],
        per_class=scored["per_class"], y_true=y_test, probs=probs)


def summarise_seeds(results: Sequence[SeedResult], data: AgentData, settings: dict[str, Any],
                    out_dir: Path | None) -> Evaluation:
    """The :class:`Evaluation` of per-seed results, with its plots drawn in ``out_dir``."""
    seeds = [r.seed for r in results]
    summed = np.sum([r.confusion_matrix for r in results], axis=0)
    plots: list[str] = []
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        confusion_figure(summed, data.class_names, confusion_title(len(seeds), summed),
                         out_dir / "confusion_matrix.png")
        learning_curve_figure([r.curve for r in results], seeds,
                              [r.best_epoch for r in results], out_dir / "learning_curve.png")
        plots = ["confusion_matrix.png", "learning_curve.png"]
    return Evaluation(
        per_seed=list(results), aggregate=summarize([r.metrics for r in results]),
        confusion_matrix=summed, per_class=_mean_per_class(results), plots=plots,
        data={"name": data.name, "source": data.source, "description": data.description},
        settings={**settings, "convergence_tolerance": CONVERGENCE_TOLERANCE,
                  "sgd_momentum": SGD_MOMENTUM, "train_eval_max": TRAIN_EVAL_MAX})


def evaluate(build: Callable[[], nn.Module], data: AgentData, train: TrainSpec,
             seeds: Sequence[int] = (0, 1, 2), patience: int = 3, out_dir: Path | None = None,
             max_seconds: float | None = None, batch: str = "auto") -> Evaluation:
    """Train and test ``build()`` once per seed in this process; summarise; draw the plots
    in ``out_dir``. For models built by trusted code only (the agent's candidates are
    evaluated in the sandbox: :mod:`sweeplab.agent.candidate`).

    ``batch`` ``auto`` trains the seeds together where the batched trainer can
    (:mod:`sweeplab.agent.multiseed`), ``off`` one by one; ``settings["training"]`` says
    which ran and why. ``max_seconds`` bounds the whole training (one by one: each seed
    may train for an equal share of it; at least one epoch always runs, and a run cut
    short says ``stopped_by_time``).
    """
    from sweeplab.agent import training
    from sweeplab.agent.multiseed import train_all

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    if batch not in BATCH_MODES:
        raise ValueError(f"batch must be one of {', '.join(BATCH_MODES)}, got {batch!r}")
    tensors = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val,
               "y_val": data.y_val}
    try:
        reports, path = train_all(training, build, tensors, train.model_dump(), seeds,
                                  patience, data.num_classes, max_seconds, batch=batch)
    except TrainingError as exc:
        raise EvaluationError(str(exc)) from exc
    results = []
    for report in reports:
        model = report.pop("model")
        val = predict(model, data.x_val, data.num_classes).numpy()
        test = predict(model, data.x_test, data.num_classes).numpy()
        results.append(score_seed(report, val, test, data, patience))
    return summarise_seeds(results, data, {"train": train.model_dump(), "seeds": seeds,
                                           "patience": patience, "max_seconds": max_seconds,
                                           "training": {**path, "message": describe(path)}},
                           out_dir)
