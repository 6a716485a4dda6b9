"""What a batched training is asked to do: the runs, their shared data and their settings.

A batch trains B runs of one architecture together. What may differ between runs is
in :class:`RunSpec` (seed, hyperparameters, schedule, clipping, SAM radius, which
samples, epochs, RunContext); what they share is in :class:`TrainSettings` (optimizer
kind, mini-batch size, SAM on or off, device) and :class:`TrainData` (one set of
tensors on the device). Every value is checked before any work starts; a bad one is a
:class:`~sweeplab.errors.ConfigError` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from sweeplab.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw")
"""Optimizer kinds: ``torch.optim.SGD``, ``Adam`` and ``AdamW``, step for step."""
FORMULATIONS = ("auto", "vmap", "func", "hand")
"""How the B forward/backward passes are computed (see :mod:`sweeplab.batched.objective`)."""

Schedule = Callable[[int], float]
"""Learning-rate multiplier at optimizer step k (0-based), as ``LambdaLR``'s ``lr_lambda``."""


@dataclass
class RunSpec:
    """One run of a batch: its randomness, hyperparameters, data and record.

    ``seed`` seeds the model factory (``torch.manual_seed(seed)`` around
    ``make_model(run)``) and the run's own batch-order generator, so a run draws the
    same initial weights and the same mini-batches as when it trains alone.
    ``samples`` are the indices of the shared data this run trains on (``None``: all of
    them); its batch order is ``torch.randperm(len(samples))`` per epoch, split into
    mini-batches, exactly as a loop over ``data[samples]`` draws it. ``schedule(k)``
    multiplies ``lr`` at optimizer step k (``LambdaLR`` semantics); ``grad_clip`` is a
    ``clip_grad_norm_`` max norm; ``sam_rho`` is this run's SAM radius when the batch
    trains with SAM. ``ctx`` receives the run's metrics and checkpoints; ``config`` is
    whatever the caller wants ``make_model`` and ``evaluate`` to see (a study config).
    """

    seed: int
    lr: float
    epochs: int
    weight_decay: float = 0.0
    momentum: float = 0.0
    dampening: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Schedule | None = None
    grad_clip: float | None = None
    sam_rho: float = 0.05
    samples: torch.Tensor | None = None
    log_interval: int = 1
    ctx: Any = None
    config: Any = None
    name: str = ""

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step``: ``lr * schedule(step)``."""
        return self.lr if self.schedule is None else self.lr * self.schedule(step)


@dataclass(frozen=True)
class TrainSettings:
    """What every run of a batch shares.

    ``optimizer`` is one of :data:`OPTIMIZERS` (``nesterov`` for SGD); ``sam`` trains
    every run with sharpness-aware minimization (radius ``RunSpec.sam_rho``).
    ``memory_budget`` (bytes) and ``max_batch`` bound B (:mod:`sweeplab.batched.memory`);
    ``always_batch`` batches even a model whose step already fills the device.
    ``sync_every`` is how many steps run between two copies of metrics to the host
    (``None``: 32 on CPU, 64 on CUDA). ``host_checks`` checks every step's losses on
    the host (``None``: on CPU, where it is free; on CUDA a failure is found at the next
    copy, and the failed run's later steps are masked out on the device).
    """

    optimizer: str = "adam"
    batch_size: int = 64
    nesterov: bool = False
    sam: bool = False
    device: str | torch.device = "cpu"
    formulation: str = "auto"
    sync_every: int | None = None
    host_checks: bool | None = None
    memory_budget: int | None = None
    max_batch: int | None = None
    always_batch: bool = False

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


@dataclass
class TrainData:
    """The data every run of a batch draws its mini-batches from (moved to the device once).

    ``inputs[i]`` and ``targets[i]`` are sample i; a run trains on ``RunSpec.samples``.
    """

    inputs: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


def _check(ok: bool, key: str, value: Any, allowed: str, where: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed, where=where)


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def validate(runs: Sequence[RunSpec], settings: TrainSettings, n_samples: int) -> None:
    """Raise :class:`ConfigError` for the first bad value (before any work starts)."""
    where = "batched training"
    _check(settings.optimizer in OPTIMIZERS, "optimizer", settings.optimizer,
           "allowed values are " + ", ".join(OPTIMIZERS), where)
    _check(settings.formulation in FORMULATIONS, "formulation", settings.formulation,
           "allowed values are " + ", ".join(FORMULATIONS), where)
    _check(isinstance(settings.batch_size, int) and settings.batch_size >= 1, "batch_size",
           settings.batch_size, "a positive integer", where)
    for key in ("sync_every", "max_batch"):
        value = getattr(settings, key)
        _check(value is None or (isinstance(value, int) and value >= 1), key, value,
               "a positive integer or None", where)
    _check(settings.memory_budget is None or settings.memory_budget > 0, "memory_budget",
           settings.memory_budget, "a positive number of bytes or None", where)
    try:
        device = torch.device(settings.device)
    except (RuntimeError, TypeError):
        device = None
    _check(device is not None and device.type in ("cpu", "cuda"), "device", settings.device,
           "cpu, cuda or cuda:<index>", where)
    _check(device.type != "cuda" or torch.cuda.is_available(), "device", settings.device,
           f"no CUDA device is available here (torch {torch.__version__}); use cpu", where)
    _check(len(runs) > 0, "runs", [], "at least one run", where)
    for i, run in enumerate(runs):
        _validate_run(run, settings, n_samples, f"run {run.name or i}")


def _validate_run(run: RunSpec, settings: TrainSettings, n: int, where: str) -> None:
    _check(isinstance(run.seed, int), "seed", run.seed, "an integer", where)
    _check(_finite(run.lr) and run.lr > 0, "lr", run.lr, "a finite number > 0", where)
    _check(isinstance(run.epochs, int) and run.epochs >= 1, "epochs", run.epochs,
           "an integer >= 1", where)
    _check(isinstance(run.log_interval, int) and run.log_interval >= 1, "log_interval",
           run.log_interval, "an integer >= 1", where)
    _check(_finite(run.weight_decay) and run.weight_decay >= 0, "weight_decay",
           run.weight_decay, "a finite number >= 0", where)
    _check(run.grad_clip is None or (_finite(run.grad_clip) and run.grad_clip > 0),
           "grad_clip", run.grad_clip, "a finite number > 0, or None (no clipping)", where)
    if settings.sam:
        _check(_finite(run.sam_rho) and run.sam_rho >= 0, "sam_rho", run.sam_rho,
               "a finite number >= 0", where)
    if settings.optimizer == "sgd":
        _check(_finite(run.momentum) and 0 <= run.momentum < 1, "momentum", run.momentum,
               "a number in [0, 1)", where)
        _check(_finite(run.dampening) and 0 <= run.dampening <= 1, "dampening",
               run.dampening, "a number in [0, 1]", where)
        if settings.nesterov:  # torch.optim.SGD's rule
            _check(run.momentum > 0 and run.dampening == 0, "nesterov", True,
                   "needs momentum > 0 and dampening 0 in every run", where)
    else:
        b1, b2 = run.betas
        _check(_finite(b1) and 0 <= b1 < 1 and _finite(b2) and 0 <= b2 < 1, "betas",
               run.betas, "two numbers in [0, 1)", where)
        _check(_finite(run.eps) and run.eps > 0, "eps", run.eps, "a finite number > 0", where)
    if run.samples is not None:
        s = run.samples
        ok = (isinstance(s, torch.Tensor) and s.dim() == 1 and len(s) > 0
              and not s.is_floating_point() and int(s.min()) >= 0 and int(s.max()) < n)
        _check(ok, "samples", f"<{len(s) if hasattr(s, '__len__') else s}>",
               f"a non-empty 1-D integer tensor of indices in [0, {n})", where)
