"""A candidate's seeds trained together through :func:`sweeplab.batched.train_batched`.

:func:`train_seeds` trains one candidate once per seed, as
:func:`~sweeplab.agent.training.train_one_by_one` does, but as one batched computation
(stacked parameters, one forward/backward pass and one optimizer step for all seeds):
the candidates are small models whose steps are mostly per-operator overhead, which
the seeds then share. Each seed keeps what it has alone: initial weights (``build()``
under ``torch.manual_seed(seed)``), mini-batch order (``randperm`` per epoch from
``Generator().manual_seed(seed)``), Adam or SGD with momentum 0.9 step for step, its
learning curve on its own training probe and the validation set (in eval mode),
early stopping, the time budget and the best epoch's weights (the same
:class:`~sweeplab.agent.training.SeedCurve` decides), and its failure: a seed whose
loss becomes non-finite stops there alone, keeping its best finite epoch, and the
candidate fails only where it would one by one (no finite epoch).

Where the batched trainer cannot take the model (batch normalization, active dropout,
another :class:`~sweeplab.batched.BatchedModelError`), where it would not pay (the
trainer's own measure of a step: :func:`sweeplab.batched.plan_batches`), where an epoch
ends in a mini-batch of one sample (the one-by-one loop merges it into the one before),
or where batched training fails for any other reason (a forward pass ``vmap`` cannot
run, say), the seeds train one by one instead, from scratch, and the returned record
says so (:mod:`sweeplab.agent.batching`).

This module runs inside the sandbox (:mod:`sweeplab.agent.sandbox_child` loads it by its
path, after putting the sweeplab package on ``sys.path`` and before the audit hook) and
in trusted code (:func:`sweeplab.agent.evaluate.evaluate`). It gets the training
module as an argument (the child's copy, loaded by path, or
:mod:`sweeplab.agent.training`), so both paths share one training code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sweeplab.batched import (
    BatchedModelError,
    BatchPlan,
    EvalBatch,
    RunSpec,
    TrainData,
    TrainSettings,
    plan_batches,
    step_cost,
    train_batched,
)
from sweeplab.batched.stack import check_batchable
from sweeplab.errors import NonFiniteError


class OneByOne(Exception):  # noqa: N818 - a decision, not an error
    """The seeds train one by one; ``record`` says why (the vocabulary of
    :mod:`sweeplab.agent.batching`)."""

    def __init__(self, reason: str, **fields: Any):
        super().__init__(reason)
        self.record = {"path": "one_by_one", "reason": reason, **fields}


def train_all(training: ModuleType, build: Callable[[], Any], data: dict[str, torch.Tensor],
              train: dict[str, Any], seeds: list[int], patience: int, num_classes: int,
              budget_s: float | None = None, memory_budget: int | None = None,
              batch: str = "auto") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """:func:`train_seeds` with ``batch`` ``auto`` and more than one seed; one by one
    otherwise (reason ``off`` or ``one_seed``)."""
    if batch == "auto" and len(seeds) > 1:
        return train_seeds(training, build, data, train, seeds, patience, num_classes,
                           budget_s, memory_budget)
    reports = training.train_one_by_one(build, data, train, seeds, patience, num_classes,
                                        budget_s)
    return reports, {"path": "one_by_one", "reason": "off" if batch == "off" else "one_seed"}


def train_seeds(training: ModuleType, build: Callable[[], Any], data: dict[str, torch.Tensor],
                train: dict[str, Any], seeds: list[int], patience: int, num_classes: int,
                budget_s: float | None = None, memory_budget: int | None = None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Train ``seeds`` together where the batched trainer can, else one by one (see the
    module docstring); the per-seed reports of
    :func:`~sweeplab.agent.training.train_seed` (``model`` holding the best epoch's
    weights), in the seeds' order, and the record of the path taken.

    ``budget_s`` bounds the whole training (together: all seeds' epochs; one by one
    after a failed batched attempt: what is left of it, shared); ``memory_budget``
    (bytes) bounds a batch (default: the batched trainer's share of free memory).
    """
    started = time.monotonic()
    try:
        plan = _plan(training, build, data, train, seeds, num_classes, memory_budget)
        reports = _train_together(training, build, data, train, seeds, patience, num_classes,
                                  budget_s, memory_budget, started)
        return reports, {"path": "batched", "reason": "batched", "seeds": len(seeds),
                         "units": len(plan.units), "batch": plan.batch,
                         "flops": plan.cost.flops, "bytes_per_op": plan.cost.bytes_per_op}
    except OneByOne as decision:
        record = decision.record
    left = None if budget_s is None else max(0.0, budget_s - (time.monotonic() - started))
    reports = training.train_one_by_one(build, data, train, seeds, patience, num_classes, left)
    return reports, record


def _not_logits(training: ModuleType, num_classes: int) -> Exception:
    return training.TrainingError("output_shape", "the model's outputs are not "
                                  f"(batch, {num_classes}) logits")


def _loss(training: ModuleType, num_classes: int) -> Callable[[torch.Tensor, torch.Tensor],
                                                               torch.Tensor]:
    """Cross-entropy per sample, on outputs checked to be (n, num_classes) logits."""

    def loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.ndim != 2 or outputs.shape[1] != num_classes:
            raise _not_logits(training, num_classes)
        return F.cross_entropy(outputs, targets, reduction="none")

    return loss


def _unbatchable(model: nn.Module) -> str | None:
    """Why the batched trainer refuses ``model`` (a reason code), or None."""
    try:
        check_batchable(model)
    except BatchedModelError:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                return "batch_norm"
        return "dropout" if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0
                                for m in model.modules()) else "not_batchable"
    return None


def _plan(training: ModuleType, build: Callable[[], Any], data: dict[str, torch.Tensor],
          train: dict[str, Any], seeds: list[int], num_classes: int,
          memory_budget: int | None) -> BatchPlan:
    """The batched trainer's plan for these seeds, or :class:`OneByOne` with the reason."""
    n, batch_size = len(data["y_train"]), int(train["batch_size"])
    if n > batch_size and n % batch_size == 1:
        raise OneByOne("last_batch_of_one")
    try:
        with torch.random.fork_rng(devices=[]):
            model = training.build_seeded(build, seeds[0])
        reason = _unbatchable(model)
        if reason is not None:
            raise OneByOne(reason, exception="BatchedModelError")
        cost = step_cost(model, _loss(training, num_classes), data["x_train"][:batch_size],
                         data["y_train"][:batch_size])
    except OneByOne:
        raise
    except Exception as exc:  # noqa: BLE001 - one by one says what is wrong, in its words
        raise OneByOne("failed", exception=type(exc).__name__) from exc
    states = 1 if train.get("optimizer") == "sgd" else 2
    plan = plan_batches(len(seeds), cost, torch.device("cpu"), states, budget=memory_budget)
    if not plan.pays:
        raise OneByOne("does_not_pay", flops=cost.flops, bytes_per_op=cost.bytes_per_op)
    return plan


def _outputs(batch: EvalBatch, x: torch.Tensor, per_run: bool, num_classes: int,
             training: ModuleType) -> torch.Tensor:
    """The batch's logits (R, n, num_classes) on ``x`` in eval mode, as float32, in
    pieces of ``EVAL_BATCH`` samples (each run's, all R at once)."""
    runs = len(batch.runs)
    n = x.shape[1] if per_run else x.shape[0]
    step = training.EVAL_BATCH
    parts = [batch.outputs(x[:, a:a + step] if per_run else x[a:a + step], per_run=per_run,
                           eval_mode=True).float() for a in range(0, n, step)]
    out = torch.cat(parts, dim=1) if parts else torch.zeros(runs, 0, num_classes)
    if tuple(out.shape) != (runs, n, num_classes):
        raise _not_logits(training, num_classes)
    return out


def _train_together(training: ModuleType, build: Callable[[], Any],
                    data: dict[str, torch.Tensor], train: dict[str, Any], seeds: list[int],
                    patience: int, num_classes: int, budget_s: float | None,
                    memory_budget: int | None, started: float) -> list[dict[str, Any]]:
    """One :func:`train_batched` call for all seeds; per-seed reports as one by one."""
    x, y = data["x_train"], data["y_train"]
    curves = [training.SeedCurve(s, train, patience, budget_s, started) for s in seeds]
    probes = [training.probe_indices(len(y), s) for s in seeds]
    shared = all(torch.equal(p, probes[0]) for p in probes)  # every sample, when few
    failed: dict[int, Exception] = {}  # seed index -> TrainingError (no finite epoch)

    def evaluate(batch: EvalBatch) -> dict[str, Any]:
        index = [int(run.config) for run in batch.runs]
        val = _outputs(batch, data["x_val"], False, num_classes, training)
        probe_x = x[probes[0]] if shared else torch.stack([x[probes[i]] for i in index])
        fit = _outputs(batch, probe_x, not shared, num_classes, training)
        for row, i in enumerate(index):
            try:
                stop = curves[i].end_epoch(
                    batch.epochs[row], training.loss_and_accuracy(fit[row], y[probes[i]]),
                    training.loss_and_accuracy(val[row], data["y_val"]),
                    lambda row=row: batch.state_dict(row))
            except training.TrainingError as exc:
                failed[i], stop = exc, True
            if stop:
                batch.stop(row)
        return {}

    sgd = train.get("optimizer") == "sgd"
    runs = [RunSpec(seed=seed, lr=float(train["lr"]), epochs=int(train["epochs"]),
                    weight_decay=float(train.get("weight_decay", 0.0)),
                    momentum=training.SGD_MOMENTUM if sgd else 0.0, config=i,
                    name=f"seed {seed}") for i, seed in enumerate(seeds)]
    settings = TrainSettings(optimizer="sgd" if sgd else "adam",
                             batch_size=int(train["batch_size"]), memory_budget=memory_budget)
    try:
        results = train_batched(lambda run: build(), _loss(training, num_classes),
                                TrainData(x, y), runs, settings, evaluate)
    except Exception as exc:  # noqa: BLE001 - any refusal of the whole batch: one by one
        raise OneByOne("failed", exception=type(exc).__name__) from exc
    for i, result in enumerate(results):  # in the seeds' order, as one by one would meet them
        if i in failed:
            raise failed[i]
        if isinstance(result.error, NonFiniteError):
            curves[i].diverge(result.epochs + 1)
        elif result.error is not None:
            raise OneByOne("failed", exception=type(result.error).__name__)
    reports = []
    for seed, curve in zip(seeds, curves):
        model = training.build_seeded(build, seed)
        model.load_state_dict(curve.best_state)
        reports.append({"model": model, **curve.report()})
    return reports
