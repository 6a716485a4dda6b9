"""Training one model of a minima-volume run: Adam, AdamW or SGD, or SAM around any.

SAM (Foret et al. 2021, "Sharpness-Aware Minimization for Efficiently Improving
Generalization", Alg. 1): at each step, climb to ``w + rho * g / ||g||``, take the
gradient there, and apply it at ``w`` with the base optimizer.

Training stops at epoch boundaries on a stop signal (``stop_point``), after saving the
model and optimizer so far; :func:`train_model` continues from that partial state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.core.context import stop_points
from sweeplab.studies.volume.config import VolumeConfig


def make_optimizer(cfg: VolumeConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The base optimizer of ``cfg`` (SAM, when asked, wraps its steps)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019)
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def sam_step(model: nn.Module, loss_fn: Callable[[], torch.Tensor], rho: float,
             optimizer: torch.optim.Optimizer) -> torch.Tensor:
    """One SAM step; returns the loss at ``w`` (before the step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    grads = [p.grad for p in params]
    norm = torch.sqrt(sum((g * g).sum() for g in grads if g is not None))
    scale = rho / (norm + 1e-12)
    eps = []
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            e = torch.zeros_like(p) if g is None else g * scale
            p.add_(e)
            eps.append(e)
    optimizer.zero_grad(set_to_none=True)
    loss_fn().backward()
    with torch.no_grad():
        for p, e in zip(params, eps, strict=True):
            p.sub_(e)
    optimizer.step()
    return loss.detach()


EVAL_CHUNK = 4096
"""Samples per forward pass when a model is evaluated on a whole set: bounds the memory of
a CNN's activations (16 channels at 28x28 are 50 KB a sample) whatever the set's size."""


def per_sample_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = EVAL_CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy (N,) float64 and correctness (N,) bool of ``model`` on ``(x, y)``.

    In eval mode, ``chunk`` samples per forward pass; the cross-entropy is
    ``logsumexp(z) - z_y`` (``F.cross_entropy``), computed stably in float32 per sample.
    """
    model.eval()
    losses, correct = [], []
    with torch.inference_mode():
        for lo in range(0, len(y), chunk):
            logits = model(x[lo:lo + chunk])
            yc = y[lo:lo + chunk]
            losses.append(F.cross_entropy(logits, yc, reduction="none").double())
            correct.append(logits.argmax(1) == yc)
    if not losses:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.bool)
    return torch.cat(losses), torch.cat(correct)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``(x, y)`` (means in float64)."""
    loss, correct = per_sample_loss(model, x, y)
    return float(loss.mean()), float(correct.double().mean())


def train_model(
    cfg: VolumeConfig,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    partial: dict[str, Any] | None,
    save_partial: Callable[[dict[str, Any]], None],
    log: Callable[[int, float, float], None],
) -> nn.Module:
    """Train ``model`` on ``(x, y)`` for ``cfg.epochs`` from ``partial`` (or from scratch).

    The batch order is drawn from ``cfg.model_seed``; its generator state is part of a
    partial, so an interrupted model continues exactly as it would have. On a stop
    signal the state at the next epoch boundary goes to ``save_partial``, then
    :class:`~sweeplab.core.context.RunInterrupted` is raised. ``log(epoch, loss, acc)``
    is called every ``log_interval`` epochs and at the end.
    """
    optimizer = make_optimizer(cfg, model)
    gen = torch.Generator().manual_seed(cfg.model_seed)
    epoch = 0
    if partial is not None:
        model.load_state_dict(partial["model"])
        optimizer.load_state_dict(partial["optimizer"])
        gen.set_state(partial["generator"])
        epoch = int(partial["epoch"])

    def save() -> None:
        save_partial({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "generator": gen.get_state(), "epoch": epoch})

    n = len(y)
    batch = cfg.batch_size or n  # 0: full batch
    with stop_points(save) as stop_point:
        while epoch < cfg.epochs:
            stop_point(f"at epoch {epoch}")
            model.train()
            for idx in torch.randperm(n, generator=gen).split(batch):
                xb, yb = x[idx], y[idx]
                if cfg.category == "sam":
                    sam_step(model, lambda xb=xb, yb=yb: F.cross_entropy(model(xb), yb),
                             cfg.sam_rho, optimizer)
                else:
                    optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(model(xb), yb).backward()
                    optimizer.step()
            epoch += 1
            if epoch % cfg.log_interval == 0 or epoch == cfg.epochs:
                loss, acc = evaluate(model, x, y)
                if loss != loss:
                    raise FloatingPointError(f"training loss is NaN at epoch {epoch}")
                log(epoch, loss, acc)
    return model
