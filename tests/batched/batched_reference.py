"""The one-by-one reference: one run trained alone, with torch.optim, as a study's loop does.

Everything here is plain PyTorch: ``torch.manual_seed(seed)`` then the model, the
optimizer of ``torch.optim``, ``LambdaLR`` for a schedule, ``clip_grad_norm_``, SAM as
github.com/davda54/sam writes it, and the batch order ``torch.randperm(n, generator)``
split into mini-batches. The batched trainer must reproduce it run by run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.batched import RunSpec, TrainData


def mlp(in_dim: int = 20, hidden: int = 16, classes: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden), nn.Tanh(),
                         nn.Linear(hidden, classes))


def cnn(channels: int = 4, classes: int = 3) -> nn.Sequential:
    """Two 3x3 convs + ReLU + 2x2 max-pool on 8x8 images, then a linear head."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(channels * 4, classes))


def classification_data(n: int, shape: tuple[int, ...], classes: int = 3, seed: int = 0,
                        dtype: torch.dtype = torch.float64) -> TrainData:
    """A learnable problem: labels from a fixed random linear map of the inputs."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=gen, dtype=dtype)
    w = torch.randn(x[0].numel(), classes, generator=gen, dtype=dtype)
    return TrainData(x, (x.flatten(1) @ w).argmax(1))


def per_sample_ce(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


@dataclass
class Alone:
    """What a run trained alone ends with."""

    model: nn.Module
    failed_at: int | None
    losses: list[float]


def regression_data(n: int, dim: int = 20, seed: int = 0) -> TrainData:
    """Targets from a fixed random linear map plus noise: the problem of :func:`mse`."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    w = torch.randn(dim, 1, generator=gen, dtype=torch.float64)
    return TrainData(x, x @ w + 0.1 * torch.randn(n, 1, generator=gen, dtype=torch.float64))


def per_sample_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((outputs - targets) ** 2).mean(-1)


def torch_optimizer(kind: str, run: RunSpec, params, nesterov: bool = False):
    """The run's ``torch.optim`` optimizer and its ``LambdaLR`` (or None)."""
    if kind == "sgd":
        opt = torch.optim.SGD(params, lr=run.lr, momentum=run.momentum,
                              dampening=run.dampening, weight_decay=run.weight_decay,
                              nesterov=nesterov)
    else:
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls(params, lr=run.lr, betas=run.betas, eps=run.eps,
                  weight_decay=run.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, run.schedule) if run.schedule else None
    return opt, sched


def train_alone(make_model, run: RunSpec, data: TrainData, optimizer: str, batch_size: int,
                nesterov: bool = False, sam: bool = False, loss_fn=F.cross_entropy) -> Alone:
    """Train ``run`` alone, as a study's own loop would (module docstring)."""
    torch.manual_seed(run.seed)
    model = make_model(run)
    params = list(model.parameters())
    opt, sched = torch_optimizer(optimizer, run, params, nesterov)
    samples = run.samples if run.samples is not None else torch.arange(len(data))
    x, y = data.inputs[samples], data.targets[samples]
    gen = torch.Generator().manual_seed(run.seed)
    step, losses = 0, []
    trainable = [p for p in params if p.requires_grad]
    for _ in range(run.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = loss_fn(model(x[idx]), y[idx])
            if not torch.isfinite(loss):
                return Alone(model, step, losses)
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            if sam:
                _sam_second_gradient(model, trainable, x[idx], y[idx], run.sam_rho, loss_fn)
            if run.grad_clip is not None:
                nn.utils.clip_grad_norm_(params, run.grad_clip)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
    return Alone(model, None, losses)


def _sam_second_gradient(model, params, x, y, rho, loss_fn):
    """davda54/sam: first_step (climb to w + e), gradient there, second_step (back to w)."""
    grad_norm = torch.norm(torch.stack([p.grad.norm(p=2) for p in params]), p=2)
    scale = rho / (grad_norm + 1e-12)
    old = []
    with torch.no_grad():
        for p in params:
            old.append(p.data.clone())
            p.add_(p.grad * scale.to(p))
    for p in params:
        p.grad = None
    loss_fn(model(x), y).backward()
    with torch.no_grad():
        for p, w in zip(params, old):
            p.data = w
