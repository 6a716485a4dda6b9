"""Training of the anchor studies' sequence classifiers: AdamW, mini-batches, checkpoints.

Cross-entropy on the last position (Chen et al. 2025, App. C). The whole state (model,
optimizer, learning-rate schedule, batch-order generator, epoch) goes into the run's
checkpoint, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.core.context import RunContext
from sweeplab.errors import ConfigError, NonFiniteError
from sweeplab.studies.anchor.config import AnchorTrainingConfig


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU. ``cuda`` where there is none is a
    :class:`ConfigError` (one line naming the key), not a traceback from deep in torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "no CUDA device is available here (torch "
                          f"{torch.__version__}); use auto or cpu")
    return torch.device(name)


def lr_factor(cfg: AnchorTrainingConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step``.

    ``warmup_cosine`` (Chen et al. 2025, App. D: "initially set to 1e-5 ..., warmed up to
    25 times its initial value within 10 epochs, and then decreases to 1e-5 via cosine
    decay"): linear from ``warmup_start_lr`` to ``lr`` over ``warmup_epochs``, then a
    cosine from ``lr`` back down to ``warmup_start_lr``, reached at the last step.
    """
    if cfg.schedule == "constant":
        return 1.0
    warm = cfg.warmup_epochs * steps_per_epoch
    total = cfg.epochs * steps_per_epoch
    floor = cfg.warmup_start_lr / cfg.lr
    if step < warm:
        return floor + (1.0 - floor) * step / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def predict(model: nn.Module, tokens: torch.Tensor, batch_size: int) -> tuple[torch.Tensor,
                                                                               torch.Tensor]:
    """Logits' argmax and the logits themselves, in evaluation mode, batch by batch."""
    model.eval()
    logits = torch.cat([model(tokens[i:i + batch_size])
                        for i in range(0, len(tokens), batch_size)])
    model.train()
    return logits.argmax(-1), logits


def train(
    model: nn.Module,
    tokens: torch.Tensor,
    labels: torch.Tensor,
    cfg: AnchorTrainingConfig,
    ctx: RunContext,
    evaluate: Callable[[], dict[str, float]],
) -> dict[str, float]:
    """Train with AdamW for ``cfg.epochs``; log ``evaluate()`` every ``log_interval`` epochs.

    Returns the last logged metrics. Raises :class:`NonFiniteError` on a NaN loss.
    """
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(labels)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(cfg, step, steps_per_epoch))
    order = torch.Generator().manual_seed(cfg.seed)
    epoch = 0
    saved = ctx.restore()
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        order.set_state(saved["order"])
        epoch = int(saved["epoch"])
    last: dict[str, float] = {}

    def state() -> dict[str, Any]:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "order": order.get_state(), "epoch": epoch}

    with ctx.interruptible(state, last_epoch=cfg.epochs) as at_epoch:
        while True:
            at_epoch(epoch)
            if epoch % cfg.log_interval == 0 or epoch == cfg.epochs:
                last = evaluate()
                last["lr"] = opt.param_groups[0]["lr"]
                ctx.log(epoch, **last)
            if epoch >= cfg.epochs:
                return last
            for idx in torch.randperm(n, generator=order).split(cfg.batch_size):
                idx = idx.to(tokens.device)
                loss = F.cross_entropy(model(tokens[idx]), labels[idx])
                if not math.isfinite(loss.item()):
                    raise NonFiniteError("training loss", epoch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
            epoch += 1
