"""Training settings of the anchor studies' runs: the device and the learning-rate schedule.

The training loop itself is the framework's batched trainer (:mod:`.batched`: AdamW,
mini-batches in each seed's order, clipping, checkpoints), for a run alone as for many.
"""

from __future__ import annotations

import math

import torch

from sweeplab.errors import ConfigError
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
