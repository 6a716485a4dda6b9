"""The paper's learning-rate recipe (Chen et al. 2025, App. D): 1e-5, warmed up linearly to
25x (2.5e-4) within 10 epochs, then a cosine back down to 1e-5 at the last epoch."""

from __future__ import annotations

import math

import pytest
import torch

from sweeplab.studies.anchor.config import CompositeConfig
from sweeplab.studies.anchor.train import lr_factor

PAPER = CompositeConfig(lr=2.5e-4, schedule="warmup_cosine", warmup_epochs=10,
                        warmup_start_lr=1e-5, epochs=200, weight_decay=0.01, grad_clip=1.0)
STEPS = 147  # ceil(300,000 / 2048) steps per epoch


def lr_at(step: int, cfg: CompositeConfig = PAPER) -> float:
    return cfg.lr * lr_factor(cfg, step, STEPS)


def test_warmup_starts_at_1e5_and_peaks_at_25_times_after_10_epochs():
    assert lr_at(0) == pytest.approx(1e-5, rel=1e-12)
    assert lr_at(5 * STEPS) == pytest.approx((1e-5 + 2.5e-4) / 2, rel=1e-12)  # linear
    assert lr_at(10 * STEPS) == pytest.approx(25 * 1e-5, rel=1e-12)
    warm = [lr_at(s) for s in range(10 * STEPS + 1)]
    assert all(b > a for a, b in zip(warm, warm[1:]))


def test_cosine_decays_back_to_1e5_at_the_last_epoch():
    total = 200 * STEPS
    decay = [lr_at(s) for s in range(10 * STEPS, total + 1, 50)]
    assert all(b < a for a, b in zip(decay, decay[1:]))
    assert lr_at(total) == pytest.approx(1e-5, rel=1e-12)
    mid = 10 * STEPS + (total - 10 * STEPS) // 2
    assert lr_at(mid) == pytest.approx(1e-5 + (2.5e-4 - 1e-5) * 0.5 * (1 + math.cos(
        math.pi * (mid - 10 * STEPS) / (total - 10 * STEPS))), rel=1e-12)
    assert lr_at(total + 10 * STEPS) == pytest.approx(1e-5, rel=1e-12)  # stays at the floor


def test_constant_schedule_is_the_spec_protocol():
    spec = CompositeConfig()
    assert (spec.lr, spec.batch_size, spec.epochs, spec.schedule) == (1e-3, 32, 210, "constant")
    assert all(lr_factor(spec, s, 9375) == 1.0 for s in (0, 1, 10**6))


def test_scheduler_in_the_loop_follows_lr_factor():
    """torch's LambdaLR over lr_factor (the former single-run loop's scheduler, and the
    reference of test_anchor_batched.py) hands the optimizer exactly these values; the
    batched trainer's ``RunSpec.schedule`` follows the same LambdaLR semantics."""
    cfg = CompositeConfig(lr=1e-3, schedule="warmup_cosine", warmup_epochs=1,
                          warmup_start_lr=1e-5, epochs=3)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, 4))
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([cfg.lr * lr_factor(cfg, s, 4) for s in range(12)], rel=1e-12)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5, rel=1e-12)
