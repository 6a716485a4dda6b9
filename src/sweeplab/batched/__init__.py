"""Batched training: many small models of one architecture trained as one computation.

Seeds and hyperparameters of a grid often train models far too small to keep a core's
vector units (let alone a GPU) busy; B of them stacked along a leading dimension train
in about the time of a few. :func:`train_batched` takes a model factory, a per-sample
loss, shared data, and one :class:`RunSpec` per run (seed, lr and schedule, weight
decay, momentum/betas, clipping, SAM radius, samples, epochs, RunContext), and returns
one :class:`RunResult` per run (final weights as an ordinary state dict, last metrics,
or the exception that failed that run alone). Each run draws the same initial weights
and mini-batches as alone, takes the same optimizer steps as ``torch.optim``, and logs
and checkpoints through its own RunContext; see docs/batched.md.

Layers: this package is framework code; it imports ``core`` (RunContext, checkpoints)
and ``errors``, never a study.
"""

from sweeplab.batched.memory import BatchPlan, plan_batches, step_cost
from sweeplab.batched.objective import Objective
from sweeplab.batched.optim import BatchedOptimizer
from sweeplab.batched.order import RunOrder
from sweeplab.batched.spec import OPTIMIZERS, RunSpec, TrainData, TrainSettings
from sweeplab.batched.stack import BatchedModelError, StackedModel
from sweeplab.batched.trainer import EvalBatch, RunResult, train_batched

__all__ = [
    "OPTIMIZERS",
    "BatchPlan",
    "BatchedModelError",
    "BatchedOptimizer",
    "EvalBatch",
    "Objective",
    "RunOrder",
    "RunResult",
    "RunSpec",
    "StackedModel",
    "TrainData",
    "TrainSettings",
    "plan_batches",
    "step_cost",
    "train_batched",
]
