"""The training loop: mirror descent on a deep linear network, full batch or mini-batch.

One epoch is one pass over the training data (one step with the default full batch).
Gradients come from :meth:`DeepLinearNetwork.loss_and_grads` (exact, rank one per layer)
rather than autograd, which costs 3-4x more per step at these sizes.
``on_log(epoch)`` is called at epoch 0 (initialization), every ``log_interval`` epochs
and after the last epoch, always with the weights *after* ``epoch`` epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from sweeplab.errors import NonFiniteError
from sweeplab.studies.implicit_bias.model import LOSS_AND_DERIVATIVE, DeepLinearNetwork
from sweeplab.studies.implicit_bias.optim import MirrorDescent
from sweeplab.studies.implicit_bias.potentials import Potential


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

    Raises :class:`NonFiniteError` as soon as the training loss is NaN or infinite.
    """
    dtype = model.layers[0].dtype
    Xt = torch.as_tensor(X, dtype=dtype)
    yt = torch.as_tensor(y, dtype=dtype)
    n = len(yt)
    if loss not in LOSS_AND_DERIVATIVE:
        raise KeyError(f"unknown loss {loss!r}; known: {', '.join(LOSS_AND_DERIVATIVE)}")
    params = list(model.parameters())
    opt = MirrorDescent(params, lr=lr, potential=potential)
    shuffle = torch.Generator().manual_seed(seed)
    full_batch = batch_size is None or batch_size >= n
    for epoch in range(epochs + 1):
        if on_log is not None and (epoch % log_interval == 0 or epoch == epochs):
            on_log(epoch)
        if epoch == epochs:
            break
        if full_batch:
            batches = ((Xt, yt),)
        else:
            perm = torch.randperm(n, generator=shuffle)
            batches = ((Xt[idx], yt[idx]) for idx in perm.split(batch_size))
        for xb, yb in batches:
            value, grads = model.loss_and_grads(xb, yb, loss)
            if not math.isfinite(value):
                raise NonFiniteError("training loss", epoch)
            for param, grad in zip(params, grads):
                param.grad = grad
            opt.step()
    return opt
