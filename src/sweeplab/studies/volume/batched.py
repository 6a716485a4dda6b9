"""The models of a minima-volume run trained as one batch (``batch: auto``).

A run trains one small model per ``m`` (5+ of them), each on the first ``base_size + m``
samples of the same pool, with the same seed and recipe. One by one, each step of such a
model is mostly per-operator overhead; :func:`sweeplab.batched.train_batched` trains
them as one stacked computation where that pays (:func:`plan`), each model computing
what :func:`.train.train_model` computes alone:

- the same initial weights (``build_model`` under ``model_seed``) and batch order
  (``torch.randperm(size, generator=Generator().manual_seed(model_seed))`` per epoch,
  split into ``batch_size`` pieces; ``batch_size: 0``, full batch, is one piece of each
  model's own size, padded in the batch);
- the same optimizer steps (``torch.optim``'s Adam/AdamW/SGD, SAM around any);
- the same log lines (loss and accuracy on its whole training set every
  ``log_interval`` epochs) and the same partial state on a stop signal, in
  ``models/m<m>.partial.pt`` (:mod:`.partials`), continued bit for bit on the rerun.

Each model's record in the batch is a :class:`ModelRecord`: the duck-typed RunContext
the generic trainer checkpoints and logs through, writing the study's own files.

Failures: the generic trainer stops a model whose mini-batch loss is not finite and
lets the others finish; alone, the loop notices a NaN at the next log epoch. The run
needs every model, so the pipeline retrains a model that failed in the batch alone
(:func:`.train.train_model`), which raises exactly the error (message, epoch) it raises
one by one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.batched import (
    BatchPlan,
    EvalBatch,
    RunOrder,
    RunSpec,
    TrainData,
    TrainSettings,
    plan_batches,
    step_cost,
    train_batched,
)
from sweeplab.batched.trainer import OPTIMIZER_STATES
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.partials import epoch_of, steps_per_epoch, to_batched
from sweeplab.studies.volume.train import EVAL_CHUNK

_log = logging.getLogger(__name__)


@dataclass
class ModelJob:
    """One model of the batch: trains on the first ``size`` samples of the shared data.

    ``partial`` is its saved state (either path's, or None), ``save_partial(state)``
    keeps a new one, ``log(epoch, loss, acc)`` reports its whole-training-set loss and
    accuracy -- as :func:`.train.train_model` takes them.
    """

    m: int
    size: int
    partial: dict[str, Any] | None = None
    save_partial: Callable[[dict[str, Any]], None] = lambda state: None
    log: Callable[[int, float, float], None] = lambda epoch, loss, acc: None


def per_sample_ce(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample: the loss :func:`.train.train_model` averages."""
    return F.cross_entropy(outputs, targets, reduction="none")


def batch_size(cfg: VolumeConfig, jobs: Sequence[ModelJob]) -> int:
    """The shared mini-batch size: ``batch_size``, or the largest training set (full batch).

    With full batch every model's epoch is one mini-batch of its whole (permuted)
    training set, the last and only piece of ``randperm(size).split(largest)``.
    """
    return cfg.batch_size or max(job.size for job in jobs)


def plan(cfg: VolumeConfig, x: torch.Tensor, y: torch.Tensor, jobs: Sequence[ModelJob],
         make_model: Callable[[], nn.Module]) -> BatchPlan:
    """How :func:`sweeplab.batched.plan_batches` would split ``jobs``, from one measured step.

    The step is the first model's first mini-batch, as ``train_batched`` measures it.
    ``plan.pays`` is False where batching does not pay (a large model or mini-batch on
    CPU): the run then trains its models one by one.
    """
    bs = batch_size(cfg, jobs)
    first = jobs[0]
    order = RunOrder(cfg.model_seed, len(y), bs, torch.arange(first.size))
    batches = order.batches(0, 1)
    index = batches.index[0, : int(batches.size[0])]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.model_seed)
        model = make_model()
    cost = step_cost(model, per_sample_ce, x[index].cpu(), y[index].cpu())
    return plan_batches(len(jobs), cost, torch.device(cfg.device),
                        OPTIMIZER_STATES[cfg.optimizer], cfg.category == "sam")


class _Said:
    """The run's logger for the trainer's lines, each line said once for the whole batch."""

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        self.seen: set[str] = set()

    def info(self, msg: str, *args: Any) -> None:
        text = msg % args if args else msg
        if text not in self.seen:
            self.seen.add(text)
            self.logger.info(text)

    def warning(self, msg: str, *args: Any) -> None:
        self.logger.warning(msg, *args)


@dataclass(eq=False)
class ModelRecord:
    """A model's RunContext in the batch: checkpoints go to its partial file, log lines to
    its ``log``; a NaN loss at a log epoch is remembered as the loop alone would raise it.

    ``save_interval`` is 0: a partial is written on a stop signal, and at the model's last
    epoch (so a model that finished before a stop reached its batch-mates is not trained
    again).
    """

    job: ModelJob
    spe: int
    logger: _Said
    save_interval: int = 0
    nan_epoch: int | None = None
    resumed: dict[str, Any] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.job.partial is not None:
            self.resumed = to_batched(self.job.partial, self.spe)

    @property
    def resumed_epoch(self) -> int | None:
        return None if self.resumed is None else epoch_of(self.resumed)

    def restore(self) -> dict[str, Any] | None:
        return self.resumed

    def checkpoint(self, epoch: int, state: dict[str, Any], reason: str = "interval") -> None:
        self.job.save_partial(state)

    def log(self, step: int, **metrics: float) -> None:
        if "loss" not in metrics:  # a row without the evaluation: nothing the loop logs
            return
        loss, acc = float(metrics["loss"]), float(metrics["acc"])
        if loss != loss:  # the loop alone: FloatingPointError at this epoch
            self.nan_epoch = self.nan_epoch or step
            return
        if self.nan_epoch is None:
            self.job.log(step, loss, acc)


def _evaluate(x: torch.Tensor, y: torch.Tensor) -> Callable[[EvalBatch], Mapping[str, Any]]:
    """Loss and accuracy of each model on its whole training set (``.train.evaluate``).

    The models' outputs on the shared samples, :data:`.train.EVAL_CHUNK` at a time; model
    r's figures are the float64 means over its first ``size`` samples.
    """

    def evaluate(batch: EvalBatch) -> dict[str, torch.Tensor]:
        sizes = torch.tensor([run.config.size for run in batch.runs], device=x.device)
        top = int(sizes.max())
        loss_sum = torch.zeros(len(sizes), dtype=torch.float64, device=x.device)
        correct = torch.zeros_like(loss_sum)
        for lo in range(0, top, EVAL_CHUNK):
            xc, yc = x[lo:min(top, lo + EVAL_CHUNK)], y[lo:min(top, lo + EVAL_CHUNK)]
            out = batch.outputs(xc)  # (R, c, classes)
            ce = F.cross_entropy(out.flatten(0, 1), yc.repeat(len(sizes)),
                                 reduction="none").view(len(sizes), -1).double()
            hit = (out.argmax(-1) == yc).double()
            mine = (torch.arange(lo, lo + len(yc), device=x.device) < sizes[:, None]).double()
            loss_sum += (ce * mine).sum(1)
            correct += (hit * mine).sum(1)
        return {"loss": loss_sum / sizes, "acc": correct / sizes}

    return evaluate


@dataclass
class RunModels:
    """The models of one run in a batch: its config, its training data, its models.

    ``x, y`` hold at least the largest model's training set (a model of size ``s``
    trains on ``x[:s]``); ``logger`` receives the trainer's lines for this run.
    """

    cfg: VolumeConfig
    x: torch.Tensor
    y: torch.Tensor
    jobs: Sequence[ModelJob]
    make_model: Callable[[], nn.Module]
    logger: logging.Logger | None = None

    @property
    def top(self) -> int:
        """Samples its largest model trains on."""
        return max(job.size for job in self.jobs)


@dataclass(eq=False)
class _Slot:
    """A model's place in the batch (``RunSpec.config``): its rows of the stacked data,
    ``start`` to ``start + job.size``, and the run whose architecture builds it."""

    job: ModelJob
    start: int
    run: RunModels

    @property
    def size(self) -> int:
        return self.job.size


def _evaluate_rows(x: torch.Tensor, y: torch.Tensor) -> Callable[[EvalBatch], Mapping[str, Any]]:
    """:func:`_evaluate` for models of several runs: each on its own rows of ``(x, y)``.

    Model r sees rows ``start_r .. start_r + size_r`` (its run's training set), gathered
    per model (``outputs(..., per_run=True)``), in chunks of :data:`.train.EVAL_CHUNK`
    samples over all models; rows past a model's size repeat its last row and are left
    out of its means.
    """

    def evaluate(batch: EvalBatch) -> dict[str, torch.Tensor]:
        slots = [run.config for run in batch.runs]
        starts = torch.tensor([s.start for s in slots], device=x.device)
        sizes = torch.tensor([s.size for s in slots], device=x.device)
        chunk = max(1, EVAL_CHUNK // len(slots))
        loss_sum = torch.zeros(len(slots), dtype=torch.float64, device=x.device)
        correct = torch.zeros_like(loss_sum)
        for lo in range(0, int(sizes.max()), chunk):
            pos = torch.arange(lo, lo + chunk, device=x.device)
            mine = pos < sizes[:, None]
            rows = starts[:, None] + torch.minimum(pos, sizes[:, None] - 1)
            out = batch.outputs(x[rows], per_run=True)  # (R, chunk, classes)
            yc = y[rows]
            ce = F.cross_entropy(out.flatten(0, 1), yc.flatten(),
                                 reduction="none").view(len(slots), -1).double()
            loss_sum += torch.where(mine, ce, 0.0).sum(1)
            correct += ((out.argmax(-1) == yc) & mine).double().sum(1)
        return {"loss": loss_sum / sizes, "acc": correct / sizes}

    return evaluate


def train_together(
    cfg: VolumeConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    jobs: Sequence[ModelJob],
    make_model: Callable[[], nn.Module],
    logger: logging.Logger | None = None,
) -> list[nn.Module | BaseException]:
    """Train every model of ``jobs`` on its prefix of ``(x, y)`` as one batch.

    Returns, per job in order, the trained model (``make_model()`` with the final
    weights) or the exception that failed it in the batch: the trainer's
    :class:`~sweeplab.errors.NonFiniteError`, or ``FloatingPointError`` for a NaN loss at
    a log epoch. Raises :class:`~sweeplab.core.context.RunInterrupted` on a stop signal,
    after every model still training saved its partial state.
    """
    return train_runs_together([RunModels(cfg, x, y, jobs, make_model, logger)])[0]


def train_runs_together(runs: Sequence[RunModels]) -> list[list[nn.Module | BaseException]]:
    """Train the models of several runs (equal :func:`.batch_keys.batch_key`) as one batch.

    The runs' training sets are stacked one after another in one ``TrainData``; a model
    trains on its own run's rows (``samples``), with its run's seed, lr, weight decay,
    momentum, SAM radius, epochs and log interval, so it computes what it computes in
    its run alone. The shared settings (optimizer, mini-batch size, SAM, device) are the
    first run's: the batch key makes them equal. Returns, per run and per job, what
    :func:`train_together` returns.
    """
    first = runs[0].cfg
    slots: list[_Slot] = []
    xs, ys, start = [], [], 0
    for run in runs:
        slots.extend(_Slot(job, start, run) for job in run.jobs)
        xs.append(run.x[:run.top])
        ys.append(run.y[:run.top])
        start += run.top
    saids = [_Said(run.logger or _log) for run in runs]
    said_of = {id(run): said for run, said in zip(runs, saids, strict=True)}
    records = [ModelRecord(s.job, steps_per_epoch(s.size, s.run.cfg.batch_size),
                           said_of[id(s.run)]) for s in slots]
    specs = [RunSpec(seed=s.run.cfg.model_seed, lr=s.run.cfg.lr, epochs=s.run.cfg.epochs,
                     weight_decay=s.run.cfg.weight_decay,
                     momentum=s.run.cfg.momentum if s.run.cfg.optimizer == "sgd" else 0.0,
                     sam_rho=s.run.cfg.sam_rho,
                     samples=None if (s.start, s.size) == (0, start)
                     else torch.arange(s.start, s.start + s.size),
                     log_interval=s.run.cfg.log_interval, ctx=record, config=s,
                     name=f"m{s.job.m}")
             for s, record in zip(slots, records, strict=True)]
    settings = TrainSettings(optimizer=first.optimizer,
                             batch_size=batch_size(first, [s.job for s in slots]),
                             sam=first.category == "sam", device=first.device)
    data = TrainData(torch.cat(xs), torch.cat(ys))
    on = settings.torch_device
    x_on, y_on = data.inputs.to(on), data.targets.to(on)
    evaluate = _evaluate(x_on, y_on) if len(runs) == 1 else _evaluate_rows(x_on, y_on)
    results = train_batched(lambda spec: spec.config.run.make_model(), per_sample_ce, data,
                            specs, settings, evaluate=evaluate)
    out: dict[int, list[nn.Module | BaseException]] = {id(run): [] for run in runs}
    for slot, result, record in zip(slots, results, records, strict=True):
        mine = out[id(slot.run)]
        if record.nan_epoch is not None:
            mine.append(FloatingPointError(f"training loss is NaN at epoch {record.nan_epoch}"))
        elif result.error is not None:
            mine.append(result.error)
        else:
            model = slot.run.make_model()
            model.load_state_dict(result.state_dict)
            mine.append(model)
    return [out[id(run)] for run in runs]
