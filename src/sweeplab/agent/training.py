"""Training one candidate for one seed, and its predictions: the code that runs in the sandbox.

Standard library and torch only, never sweeplab: the sandbox's child loads this file by
its path (:mod:`sweeplab.agent.sandbox_child`), and :func:`sweeplab.agent.evaluate.evaluate`
imports it for models built by trusted code. Nothing here decides a verdict: in the
sandbox, what this code reports is the candidate's claim (the curve), and the agent
scores the weights it returns with its own code on data whose labels never enter a
sandbox.

:func:`train_seed` seeds torch, builds a fresh model and trains it (Adam, or SGD with
momentum 0.9; cross-entropy on the logits), measuring train and validation loss and
accuracy after every epoch. Training stops early once the validation loss has not
improved for ``patience`` epochs, or when ``budget_s`` seconds are spent (at least one
epoch always runs), and the weights of the best-validation epoch are restored. A run
whose loss becomes non-finite stops there and keeps its best finite epoch; one that
never had a finite epoch raises :class:`TrainingError` (code ``diverged``).
:func:`train_one_by_one` does that for each seed in turn.

The epoch-by-epoch bookkeeping (curve, early stopping, time budget, best weights,
divergence) is :class:`SeedCurve`, shared with the batched path
(:mod:`sweeplab.agent.multiseed`), so both decide the same way. Seed s's mini-batches are
``torch.randperm(n)`` per epoch from ``torch.Generator().manual_seed(s)`` (the order
:mod:`sweeplab.batched` draws), and the training samples its curve is measured on come
from a generator of their own (:func:`probe_indices`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

EVAL_BATCH = 1000
"""Samples per forward pass when measuring (no gradients, so only memory bounds it)."""

TRAIN_EVAL_MAX = 10_000
"""Training metrics per epoch are measured on at most this many training samples (a
fixed seeded subset), so a large training set does not double the cost of an epoch."""

SGD_MOMENTUM = 0.9
"""Momentum of the ``sgd`` optimizer (heavy ball; the usual choice for image classifiers)."""


class TrainingError(RuntimeError):
    """A candidate could not be trained; ``code`` names why in the sandbox's vocabulary
    (``not_a_module``, ``output_shape``, ``no_parameters``, ``diverged``)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def logits_of(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``model(x)``, checked to be (batch, num_classes) logits."""
    logits = model(x)
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 \
            or tuple(logits.shape) != (x.shape[0], num_classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TrainingError("output_shape", f"the model returned {shape} for a batch of "
                            f"{x.shape[0]}; expected ({x.shape[0]}, {num_classes}) logits")
    return logits


def predict(model: nn.Module, x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The model's logits for ``x`` in eval mode, without gradients, as float32."""
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, x.shape[0], EVAL_BATCH):
            chunks.append(logits_of(model, x[start:start + EVAL_BATCH], num_classes).float())
    return torch.cat(chunks) if chunks else torch.zeros(0, num_classes)


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy (in float64) and accuracy of ``logits`` against labels ``y``."""
    logits = logits.double()
    loss = float(F.cross_entropy(logits, y, reduction="sum")) / max(1, y.shape[0])
    accuracy = int((logits.argmax(dim=1) == y).sum()) / max(1, y.shape[0])
    return loss, accuracy


def _optimizer(model: nn.Module, train: dict[str, Any]) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TrainingError("no_parameters", "the model has no trainable parameters")
    lr, decay = float(train["lr"]), float(train.get("weight_decay", 0.0))
    if train.get("optimizer") == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=SGD_MOMENTUM, weight_decay=decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=decay)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch's index batches; a last batch of one sample joins the one before
    (batch norm cannot train on a single sample)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and batches[-1].numel() == 1:
        batches[-2] = torch.cat(batches[-2:])
        batches.pop()
    return batches


def probe_indices(n: int, seed: int) -> torch.Tensor:
    """The training samples seed ``seed``'s curve is measured on: at most
    :data:`TRAIN_EVAL_MAX` of them, drawn from a generator of their own (so the mini-batch
    generator draws only the epochs' permutations), sorted."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[:TRAIN_EVAL_MAX].sort().values


class SeedCurve:
    """One seed's training, epoch by epoch: its curve, when it stops, its best weights.

    :meth:`end_epoch` takes an epoch's train and validation loss and accuracy and says
    whether training stops there: non-finite (``diverged``; :class:`TrainingError` when
    no epoch was finite), ``patience`` epochs without a better validation loss
    (``stopped_early``), or more than ``budget_s`` seconds since ``started``
    (``stopped_by_time``); never after the last epoch. ``best_state`` holds the weights
    of the best-validation epoch (``state()`` is called only when an epoch improves).
    """

    def __init__(self, seed: int, train: dict[str, Any], patience: int,
                 budget_s: float | None, started: float):
        self.seed, self.lr, self.epochs = seed, float(train["lr"]), int(train["epochs"])
        self.patience, self.budget_s, self.started = patience, budget_s, started
        self.curve: list[dict[str, float]] = []
        self.best_loss, self.bad = math.inf, 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = self.stopped_by_time = self.diverged = False

    def diverge(self, epoch: int) -> None:
        """The loss became non-finite in ``epoch``: keep the best finite epoch, or raise."""
        self.diverged = True
        if self.best_state is None:
            raise TrainingError("diverged", f"seed {self.seed}: the loss became non-finite "
                                f"in epoch {epoch} (learning rate {self.lr:g} too high?)")

    def end_epoch(self, epoch: int, train: tuple[float, float], val: tuple[float, float],
                  state: Callable[[], dict[str, torch.Tensor]]) -> bool:
        """Record epoch ``epoch`` ((loss, accuracy) on the training probe and the
        validation set); True when training stops after it."""
        if not (math.isfinite(train[0]) and math.isfinite(val[0])):
            self.diverge(epoch)
            return True
        self.curve.append({"epoch": epoch, "train_loss": train[0], "train_accuracy": train[1],
                           "val_loss": val[0], "val_accuracy": val[1],
                           "seconds": time.monotonic() - self.started})
        if val[0] < self.best_loss:
            self.best_loss, self.bad = val[0], 0
            self.best_state = state()
        else:
            self.bad += 1
        if epoch < self.epochs and self.bad >= self.patience:
            self.stopped_early = True
            return True
        if epoch < self.epochs and self.budget_s is not None \
                and time.monotonic() - self.started > self.budget_s:
            self.stopped_by_time = True
            return True
        return False

    def report(self) -> dict[str, Any]:
        """``seed``, ``curve``, ``epochs_run``, the stop and divergence flags, ``seconds``."""
        return {"seed": self.seed, "curve": self.curve, "epochs_run": len(self.curve),
                "stopped_early": self.stopped_early, "stopped_by_time": self.stopped_by_time,
                "diverged": self.diverged, "seconds": time.monotonic() - self.started}


def build_seeded(build: Callable[[], Any], seed: int) -> nn.Module:
    """``build()`` after ``torch.manual_seed(seed)``, checked to be an ``nn.Module``."""
    torch.manual_seed(seed)
    model = build()
    if not isinstance(model, nn.Module):
        raise TrainingError("not_a_module", f"build() returned {type(model).__name__}, "
                            "not a torch nn.Module")
    return model


def measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
            num_classes: int) -> tuple[float, float]:
    """The model's (loss, accuracy) on ``x``, ``y`` in eval mode (:func:`predict`)."""
    return loss_and_accuracy(predict(model, x, num_classes), y)


def train_seed(build: Callable[[], Any], data: dict[str, torch.Tensor], train: dict[str, Any],
               seed: int, patience: int, num_classes: int,
               budget_s: float | None = None) -> dict[str, Any]:
    """Train one fresh model with ``seed`` (see the module docstring).

    ``data`` holds ``x_train``, ``y_train``, ``x_val``, ``y_val``; ``train`` the training
    settings (``optimizer``, ``lr``, ``batch_size``, ``epochs``, ``weight_decay``).
    Returns ``model`` (holding the best epoch's weights) and :meth:`SeedCurve.report`:
    ``seed``, ``curve`` (one dict per epoch: ``epoch``, ``train_loss``,
    ``train_accuracy``, ``val_loss``, ``val_accuracy``, ``seconds``), ``epochs_run``,
    ``stopped_early``, ``stopped_by_time``, ``diverged`` and ``seconds``.
    """
    progress = SeedCurve(seed, train, patience, budget_s, time.monotonic())
    model = build_seeded(build, seed)
    optimizer = _optimizer(model, train)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = data["x_train"], data["y_train"]
    n = x_train.shape[0]
    probe = probe_indices(n, seed)
    x_probe, y_probe = x_train[probe], y_train[probe]
    for epoch in range(1, progress.epochs + 1):
        model.train()
        for idx in _batches(n, int(train["batch_size"]), generator):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(logits_of(model, x_train[idx], num_classes), y_train[idx])
            loss.backward()
            optimizer.step()
        if progress.end_epoch(epoch, measure(model, x_probe, y_probe, num_classes),
                             measure(model, data["x_val"], data["y_val"], num_classes),
                             lambda: {k: v.detach().clone()
                                      for k, v in model.state_dict().items()}):
            break
    model.load_state_dict(progress.best_state)
    return {"model": model, **progress.report()}


def train_one_by_one(build: Callable[[], Any], data: dict[str, torch.Tensor],
                     train: dict[str, Any], seeds: list[int], patience: int, num_classes: int,
                     budget_s: float | None = None) -> list[dict[str, Any]]:
    """:func:`train_seed` for each of ``seeds`` in turn, each given an equal share of
    ``budget_s``; the first seed that cannot be trained raises."""
    share = None if budget_s is None else budget_s / len(seeds)
    return [train_seed(build, data, train, seed, patience, num_classes, share)
            for seed in seeds]
