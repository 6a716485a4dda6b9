"""The training loop: mirror descent on a deep linear network, full batch or mini-batch.

One epoch is one pass over the training data (one step with the default full batch).
Gradients come from :meth:`DeepLinearNetwork.loss_and_grads` (exact, rank one per layer)
rather than autograd, which costs 3-4x more per step at these sizes.

:class:`MirrorDescentTrainer` holds the whole training state (weights, dual variables,
shuffling generator, epoch) and saves/loads it as plain tensors, so a run resumed from a
checkpoint continues bit for bit where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sweeplab.errors import NonFiniteError
from sweeplab.studies.implicit_bias.model import LOSS_AND_DERIVATIVE, DeepLinearNetwork
from sweeplab.studies.implicit_bias.optim import MirrorDescent
from sweeplab.studies.implicit_bias.potentials import Potential


class MirrorDescentTrainer:
    """Mirror descent on ``model`` over (X, y); ``epoch`` counts the epochs done."""

    def __init__(
        self,
        model: DeepLinearNetwork,
        X: np.ndarray,
        y: np.ndarray,
        potential: Potential,
        *,
        lr: float,
        loss: str = "logistic",
        batch_size: int | None = None,
        seed: int = 0,
    ):
        if loss not in LOSS_AND_DERIVATIVE:
            raise KeyError(f"unknown loss {loss!r}; known: {', '.join(LOSS_AND_DERIVATIVE)}")
        dtype = model.layers[0].dtype
        self.model = model
        self.X = torch.as_tensor(X, dtype=dtype)
        self.y = torch.as_tensor(y, dtype=dtype)
        self.loss = loss
        self.batch_size = batch_size
        self.params = list(model.parameters())
        self.optimizer = MirrorDescent(self.params, lr=lr, potential=potential)
        self.shuffle = torch.Generator().manual_seed(seed)
        self.epoch = 0

    def run_epoch(self) -> None:
        """One pass over the data; :class:`NonFiniteError` on a NaN or infinite loss."""
        n = len(self.y)
        if self.batch_size is None or self.batch_size >= n:
            batches: Any = ((self.X, self.y),)
        else:
            perm = torch.randperm(n, generator=self.shuffle)
            batches = ((self.X[idx], self.y[idx]) for idx in perm.split(self.batch_size))
        for xb, yb in batches:
            value, grads = self.model.loss_and_grads(xb, yb, self.loss)
            if not math.isfinite(value):
                raise NonFiniteError("training loss", self.epoch)
            for param, grad in zip(self.params, grads):
                param.grad = grad
            self.optimizer.step()
        self.epoch += 1

    def train(
        self,
        epochs: int,
        log_interval: int = 1,
        on_log: Callable[[int], None] | None = None,
        at_epoch: Callable[[int], None] | None = None,
    ) -> None:
        """Train from ``self.epoch`` up to ``epochs`` epochs.

        At each epoch ``e`` (weights after ``e`` epochs): ``at_epoch(e)`` first (where a
        checkpoint is taken), then ``on_log(e)`` at ``e = 0``, every ``log_interval``
        epochs and at ``e = epochs``. A run resumed at ``e`` thus repeats neither.
        """
        while True:
            epoch = self.epoch
            if at_epoch is not None:
                at_epoch(epoch)
            if on_log is not None and (epoch % log_interval == 0 or epoch == epochs):
                on_log(epoch)
            if epoch >= epochs:
                return
            self.run_epoch()

    def state_dict(self) -> dict[str, Any]:
        """Weights, dual variables, shuffling generator and epoch, as plain tensors."""
        duals = [self.optimizer.state[p].get("dual") for p in self.params]
        return {
            "epoch": self.epoch,
            "weights": [p.detach().clone() for p in self.params],
            "duals": [None if d is None else d.clone() for d in duals],
            "shuffle": self.shuffle.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved."""
        with torch.no_grad():
            for param, weights in zip(self.params, state["weights"], strict=True):
                param.copy_(weights)
        for param, dual in zip(self.params, state["duals"], strict=True):
            if dual is not None:
                self.optimizer.state[param]["dual"] = dual.clone()
        self.shuffle.set_state(state["shuffle"])
        self.epoch = int(state["epoch"])


def train_mirror_descent(
    model: DeepLinearNetwork,
    X: np.ndarray,
    y: np.ndarray,
    potential: Potential,
    *,
    lr: float,
    epochs: int,
    loss: str = "logistic",
    batch_size: int | None = None,
    seed: int = 0,
    log_interval: int = 1,
    on_log: Callable[[int], None] | None = None,
) -> MirrorDescent:
    """Train ``model`` on (X, y) with :class:`MirrorDescent`; returns the optimizer.

    ``on_log(epoch)`` is called at epoch 0, every ``log_interval`` epochs and after the
    last epoch, with the weights after ``epoch`` epochs. Raises :class:`NonFiniteError`
    as soon as the training loss is NaN or infinite.
    """
    trainer = MirrorDescentTrainer(
        model, X, y, potential, lr=lr, loss=loss, batch_size=batch_size, seed=seed
    )
    trainer.train(epochs, log_interval=log_interval, on_log=on_log)
    return trainer.optimizer
