"""Anchor runs trained through the framework's batched trainer, alone or many together.

Every anchor run trains here (:func:`run_batch`): a grid's compatible runs (equal
:func:`.batch_keys.batch_key`: the seeds, gammas and optimizer settings of one depth) as
one :func:`sweeplab.batched.train_batched` computation, and a run alone as a batch of one.
So both paths share one training loop, one checkpoint format (``state["batched"]``, read
by a run resumed alone or in a batch) and one evaluation, and a run's directory is the
same whichever way it trained.

What each run does (Chen et al. 2025, App. C-D, as the single-run loop did it before):
its model built by :func:`.models.build_model` under its seed (gamma initialization);
AdamW with its lr, weight decay and the ``warmup_cosine`` or constant schedule of
:func:`.train.lr_factor` (``LambdaLR`` semantics, stepped every mini-batch); gradient
clipping at ``grad_clip``; mini-batches of its own seed's training split in the order of
``torch.randperm(n, generator=Generator().manual_seed(seed))`` each epoch; cross-entropy
at the last position. It logs its metrics (:mod:`.scoring`, plus ``lr``, the learning
rate of the next step) at epoch 0 and every ``log_interval`` epochs and the last,
checkpoints every ``save_interval`` epochs, the last, and on a stop signal, and ends with
``model.pt`` and ``metrics.json`` beside the framework's files. A run whose loss is not
finite fails alone (``NonFiniteError`` naming the step); the others go on. A checkpoint
of the former single-run loop resumes too (:mod:`.legacy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.batched import EvalBatch, RunSpec, TrainSettings, train_batched
from sweeplab.batched.checkpoint import STATE_KEY
from sweeplab.core.context import RunContext
from sweeplab.studies.anchor.config import AnchorTrainingConfig
from sweeplab.studies.anchor.legacy import as_batched_state, is_legacy
from sweeplab.studies.anchor.models import build_model
from sweeplab.studies.anchor.pool import DataPool, Task
from sweeplab.studies.anchor.scoring import plain_outputs, scores
from sweeplab.studies.anchor.train import lr_factor, resolve_device

OPTIMIZER = "adamw"
"""``torch.optim.AdamW`` with its default betas and eps, as the single-run loop had it."""


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample (the trainer averages a run's mini-batch)."""
    return F.cross_entropy(logits, labels, reduction="none")


def make_model(task: Task, cfg: AnchorTrainingConfig) -> nn.Module:
    """The run's gamma-initialized model, drawn from its seed."""
    return build_model(cfg.model_type, task.vocab, task.seq_len(cfg), cfg.n_layers,
                       cfg.d_model, cfg.d_state, cfg.expand, cfg.d_conv, cfg.gamma,
                       seed=cfg.seed, embedding_fan_in=cfg.embedding_fan_in,
                       conv_init=cfg.conv_init)


def steps_per_epoch(cfg: AnchorTrainingConfig) -> int:
    """Optimizer steps an epoch (the last mini-batch may be short): the schedule's unit."""
    return math.ceil(cfg.n_train / cfg.batch_size)


def run_batch(task: Task, cfgs: Sequence[AnchorTrainingConfig],
              ctxs: Sequence[RunContext]) -> list[Any]:
    """Train ``cfgs`` (equal batch keys) together; each run's final metrics or exception.

    Raises :class:`~sweeplab.core.context.RunInterrupted` on a stop signal, after every
    run still training has saved its checkpoint.
    """
    device = resolve_device(cfgs[0].device)
    pool = DataPool(task, cfgs, device)
    outcomes: list[Any] = [None] * len(cfgs)
    specs, rows = [], []
    for i, (cfg, ctx) in enumerate(zip(cfgs, ctxs)):
        try:
            specs.append(_start(task, cfg, ctx, pool, device))
            rows.append(i)
        except Exception as exc:  # noqa: BLE001 - this run fails alone
            outcomes[i] = exc
    if specs:
        spe = steps_per_epoch(cfgs[0])

        def evaluate(batch: EvalBatch) -> dict[str, Any]:
            slots = torch.tensor([pool.slot(run.seed) for run in batch.runs], device=device)
            metrics: dict[str, Any] = scores(task, partial(batch.outputs, per_run=True), pool,
                                             slots, cfgs[0].eval_batch_size)
            metrics["lr"] = [run.lr_at(epoch * spe)
                             for run, epoch in zip(batch.runs, batch.epochs)]
            return metrics

        results = train_batched(
            lambda run: make_model(task, run.config), per_sample_loss, pool.train_data(),
            specs, TrainSettings(optimizer=OPTIMIZER, batch_size=cfgs[0].batch_size,
                                 device=device), evaluate)
        for i, result in zip(rows, results):
            outcomes[i] = result.error if result.error is not None else _finish(
                ctxs[i], result.state_dict, result.metrics)
    return outcomes


def _start(task: Task, cfg: AnchorTrainingConfig, ctx: RunContext, pool: DataPool,
           device: torch.device) -> RunSpec:
    """The run's spec; a fresh run first logs its untrained model's metrics (epoch 0)."""
    _link_train_log(ctx)
    model = make_model(task, cfg).to(device)
    ctx.logger.info("%s with %d parameters on %s", cfg.model_type,
                    sum(p.numel() for p in model.parameters()), device)
    spe = steps_per_epoch(cfg)
    spec = RunSpec(seed=cfg.seed, lr=cfg.lr, epochs=cfg.epochs, weight_decay=cfg.weight_decay,
                   schedule=partial(lr_factor, cfg, steps_per_epoch=spe),
                   grad_clip=cfg.grad_clip, samples=pool.samples(cfg.seed),
                   log_interval=cfg.log_interval, ctx=ctx, config=cfg, name=ctx.run_dir.name)
    if ctx.resumed_epoch is None:
        ctx.log(0, **_plain_row(task, model, cfg, spec, pool, 0))
    elif is_legacy(state := ctx.restore()):
        # a checkpoint of the former loop, taken before its epoch's row was logged; the
        # converted state goes into the restored dict, where the trainer reads it
        epoch = int(state["epoch"])
        model.load_state_dict(state["model"])
        row = _plain_row(task, model, cfg, spec, pool, epoch) if (
            epoch % cfg.log_interval == 0 or epoch == cfg.epochs) else {}
        state[STATE_KEY] = as_batched_state(state, spe, row)
        if row:
            ctx.log(epoch, **row)
        ctx.logger.info("resumed from a checkpoint of the former single-run loop")
    return spec


def _plain_row(task: Task, model: nn.Module, cfg: AnchorTrainingConfig, spec: RunSpec,
               pool: DataPool, epoch: int) -> dict[str, float]:
    """The metrics row of one ordinary model at ``epoch`` (before the trainer takes over)."""
    slots = torch.tensor([pool.slot(cfg.seed)], device=pool.device)
    row = {name: float(v[0]) for name, v in scores(
        task, plain_outputs(model), pool, slots, cfg.eval_batch_size).items()}
    return row | {"lr": spec.lr_at(epoch * steps_per_epoch(cfg))}


def _finish(ctx: RunContext, state_dict: dict[str, torch.Tensor] | None,
            final: dict[str, float]) -> dict[str, float]:
    """``model.pt`` (the trained weights) and ``metrics.json`` (the last logged row)."""
    torch.save(state_dict, ctx.path("model.pt"))
    ctx.save_json("metrics.json", final)
    return dict(final)


def _link_train_log(ctx: RunContext) -> None:
    """``train.log`` at the run's top level: a link to ``logs/train.log`` (one file)."""
    link = ctx.path("train.log")
    if not link.is_symlink() and not link.exists():
        link.symlink_to(Path("logs") / "train.log")
