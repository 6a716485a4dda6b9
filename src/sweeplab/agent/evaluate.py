"""Quick but complete evaluation of one candidate: train over seeds, test, summarise.

For each seed, :func:`evaluate` seeds torch, builds a fresh model and trains it with the
candidate's :class:`~sweeplab.agent.space.TrainSpec` (Adam, or SGD with momentum 0.9;
cross-entropy on the logits), measuring train and validation loss and accuracy after
every epoch. Training stops early once the validation loss has not improved for
``patience`` epochs, and the weights of the best-validation epoch are restored before
the test set is scored (:mod:`sweeplab.agent.metrics`). The curve is read for the best
epoch, overfitting and the convergence epoch (:mod:`sweeplab.agent.curves`); across seeds
every metric gets its mean, std and 95% Student-t interval.

Training runs on the CPU with whatever ``torch.set_num_threads`` the caller chose. A run
whose loss becomes non-finite stops there and keeps its best finite epoch; one that never
had a finite epoch raises :class:`EvaluationError` (a ``RuntimeError``) naming the seed
and the epoch, so the agent records the candidate as failed rather than stopping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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
from sweeplab.errors import SweeplabError

__all__ = ["EVAL_BATCH", "TRAIN_EVAL_MAX", "Evaluation", "EvaluationError", "SeedResult",
           "confusion_title", "evaluate", "jsonable", "train_seed"]

EVAL_BATCH = 1000
"""Samples per forward pass when measuring (no gradients, so only memory bounds it)."""

TRAIN_EVAL_MAX = 10_000
"""Training metrics per epoch are measured on at most this many training samples (a
fixed seeded subset), so a large training set does not double the cost of an epoch."""

SGD_MOMENTUM = 0.9
"""Momentum of the ``sgd`` optimizer (heavy ball; the usual choice for image classifiers)."""


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


def _logits(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``model(x)``, checked to be (batch, num_classes) logits."""
    logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 \
            or logits.shape != (x.shape[0], num_classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise EvaluationError(f"the model returned {shape} for a batch of {x.shape[0]}; "
                              f"expected ({x.shape[0]}, {num_classes}) logits")
    return logits


def _measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int
             ) -> tuple[float, float, np.ndarray]:
    """Mean cross-entropy, accuracy and softmax probabilities (float64) in eval mode."""
    model.eval()
    total, correct, chunks = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, x.shape[0], EVAL_BATCH):
            logits = _logits(model, x[start:start + EVAL_BATCH], num_classes)
            target = y[start:start + EVAL_BATCH]
            logits = logits.double()
            total += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(dim=1) == target).sum())
            chunks.append(torch.softmax(logits, dim=1).numpy())
    n = x.shape[0]
    probs = np.concatenate(chunks) if chunks else np.zeros((0, num_classes))
    return total / n, correct / n, probs


def _optimizer(model: nn.Module, train: TrainSpec) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise EvaluationError("the model has no trainable parameters")
    if train.optimizer == "sgd":
        return torch.optim.SGD(params, lr=train.lr, momentum=SGD_MOMENTUM,
                               weight_decay=train.weight_decay)
    return torch.optim.Adam(params, lr=train.lr, weight_decay=train.weight_decay)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch's index batches; a last batch of one sample joins the one before
    (batch norm cannot train on a single sample)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches[-2] = torch.cat(batches[-2:])
        batches.pop()
    return batches


def train_seed(build: Callable[[], nn.Module], data: AgentData, train: TrainSpec, seed: int,
               patience: int, budget_s: float | None = None) -> SeedResult:
    """Train one fresh model with ``seed`` (see the module docstring) and score it."""
    started = time.monotonic()
    torch.manual_seed(seed)
    model = build()
    if not isinstance(model, nn.Module):
        raise EvaluationError(f"build() returned {type(model).__name__}, not a torch nn.Module")
    optimizer = _optimizer(model, train)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    probe = torch.randperm(n, generator=generator)[:TRAIN_EVAL_MAX].sort().values
    x_probe, y_probe = data.x_train[probe], data.y_train[probe]
    curve: list[dict[str, float]] = []
    best_loss, best_state, bad = math.inf, None, 0
    stopped_early = stopped_by_time = diverged = False
    for epoch in range(1, train.epochs + 1):
        model.train()
        for idx in _batches(n, train.batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            logits = _logits(model, data.x_train[idx], data.num_classes)
            loss = F.cross_entropy(logits, data.y_train[idx])
            loss.backward()
            optimizer.step()
        train_loss, train_acc, _ = _measure(model, x_probe, y_probe, data.num_classes)
        val_loss, val_acc, _ = _measure(model, data.x_val, data.y_val, data.num_classes)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            diverged = True
            if best_state is None:
                raise EvaluationError(f"seed {seed}: the loss became non-finite in epoch "
                                      f"{epoch} (learning rate {train.lr:g} too high?)")
            break
        curve.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                      "val_loss": val_loss, "val_accuracy": val_acc,
                      "seconds": time.monotonic() - started})
        if val_loss < best_loss:
            best_loss, bad = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if epoch < train.epochs and bad >= patience:
            stopped_early = True
            break
        if epoch < train.epochs and budget_s is not None \
                and time.monotonic() - started > budget_s:
            stopped_by_time = True
            break
    model.load_state_dict(best_state)
    test_loss, _, probs = _measure(model, data.x_test, data.y_test, data.num_classes)
    y_true = data.y_test.numpy()
    scored = classification_metrics(y_true, probs, data.class_names)
    best = best_epoch(curve)
    at_best = curve[best - 1]
    metrics = {**scored["metrics"], "test_loss": test_loss,
               "val_loss": at_best["val_loss"], "val_accuracy": at_best["val_accuracy"]}
    return SeedResult(
        seed=seed, metrics=metrics, curve=curve, best_epoch=best, epochs_run=len(curve),
        stopped_early=stopped_early, stopped_by_time=stopped_by_time, diverged=diverged,
        overfitting=overfitting(curve, patience), convergence_epoch=convergence_epoch(curve),
        seconds=time.monotonic() - started, confusion_matrix=scored["confusion_matrix"],
        per_class=scored["per_class"], y_true=y_true, probs=probs)


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


def evaluate(build: Callable[[], nn.Module], data: AgentData, train: TrainSpec,
             seeds: Sequence[int] = (0, 1, 2), patience: int = 3, out_dir: Path | None = None,
             max_seconds: float | None = None) -> Evaluation:
    """Train and test ``build()`` once per seed; summarise; draw the plots in ``out_dir``.

    ``max_seconds`` bounds the whole evaluation: each seed may train for an equal share
    of it (at least one epoch always runs; a run cut short says ``stopped_by_time``).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("evaluate needs at least one seed")
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    budget = None if max_seconds is None else max_seconds / len(seeds)
    results = [train_seed(build, data, train, s, patience, budget) for s in seeds]
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
        per_seed=results, aggregate=summarize([r.metrics for r in results]),
        confusion_matrix=summed, per_class=_mean_per_class(results), plots=plots,
        data={"name": data.name, "source": data.source, "description": data.description},
        settings={"train": train.model_dump(), "seeds": seeds, "patience": patience,
                  "max_seconds": max_seconds, "convergence_tolerance": CONVERGENCE_TOLERANCE,
                  "sgd_momentum": SGD_MOMENTUM, "train_eval_max": TRAIN_EVAL_MAX})
