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


def train_seed(build: Callable[[], Any], data: dict[str, torch.Tensor], train: dict[str, Any],
               seed: int, patience: int, num_classes: int,
               budget_s: float | None = None) -> dict[str, Any]:
    """Train one fresh model with ``seed`` (see the module docstring).

    ``data`` holds ``x_train``, ``y_train``, ``x_val``, ``y_val``; ``train`` the training
    settings (``optimizer``, ``lr``, ``batch_size``, ``epochs``, ``weight_decay``).
    Returns ``model`` (holding the best epoch's weights), ``curve`` (one dict per epoch:
    ``epoch``, ``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``,
    ``seconds``), ``epochs_run``, ``stopped_early``, ``stopped_by_time``, ``diverged``
    and ``seconds``.
    """
    started = time.monotonic()
    torch.manual_seed(seed)
    model = build()
    if not isinstance(model, nn.Module):
        raise TrainingError("not_a_module", f"build() returned {type(model).__name__}, "
                            "not a torch nn.Module")
    optimizer = _optimizer(model, train)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train = data["x_train"], data["y_train"]
    n = x_train.shape[0]
    probe = torch.randperm(n, generator=generator)[:TRAIN_EVAL_MAX].sort().values
    x_probe, y_probe = x_train[probe], y_train[probe]
    curve: list[dict[str, float]] = []
    best_loss, best_state, bad = math.inf, None, 0
    stopped_early = stopped_by_time = diverged = False
    epochs = int(train["epochs"])
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in _batches(n, int(train["batch_size"]), generator):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(logits_of(model, x_train[idx], num_classes), y_train[idx])
            loss.backward()
            optimizer.step()
        train_loss, train_acc = loss_and_accuracy(predict(model, x_probe, num_classes), y_probe)
        val_loss, val_acc = loss_and_accuracy(predict(model, data["x_val"], num_classes),
                                              data["y_val"])
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            diverged = True
            if best_state is None:
                raise TrainingError("diverged", f"seed {seed}: the loss became non-finite in "
                                    f"epoch {epoch} (learning rate {train['lr']:g} too high?)")
            break
        curve.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                      "val_loss": val_loss, "val_accuracy": val_acc,
                      "seconds": time.monotonic() - started})
        if val_loss < best_loss:
            best_loss, bad = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
        if epoch < epochs and bad >= patience:
            stopped_early = True
            break
        if epoch < epochs and budget_s is not None and time.monotonic() - started > budget_s:
            stopped_by_time = True
            break
    model.load_state_dict(best_state)
    return {"model": model, "curve": curve, "epochs_run": len(curve),
            "stopped_early": stopped_early, "stopped_by_time": stopped_by_time,
            "diverged": diverged, "seconds": time.monotonic() - started}
