"""How many runs to train as one batch: from the model's measured step and the memory allowed.

One training step of one run is measured once, on the real model and a real
mini-batch: its floating-point work (``torch.utils.flop_counter``), the bytes autograd
saves for the backward pass (``saved_tensors_hooks``) and the operators it dispatches.
A run of the batch then needs about::

    bytes = P * s * (4 + 2 k + 2 sam) + 2 * saved        (P parameters of s bytes,
                                                          k optimizer states)

(parameters, gradients, new parameters and a masked copy, each optimizer state twice
while it is updated, the SAM point and its gradient; activations and their gradients).
B is the memory budget divided by that, at most ``max_batch``; on CPU also at most what
keeps the batch's activations within twice the last-level cache (:func:`cpu_cache_bytes`;
past it every elementwise pass of the batch goes through memory). The runs are cut
into units of at most B, nearly equal.

Batching removes per-operator overhead (Python, dispatch, kernel launches), which B runs
share; it does not reduce the arithmetic or the memory traffic. So it pays while a
run's step is made of many small operators, and runs train one by one (units of one,
the plan says why) when

- one step is more than :data:`PAYS_BELOW_FLOPS` of work (it fills the device alone), or
- on CPU, its operators handle more than :data:`CPU_PAYS_BELOW_BYTES_PER_OP` of
  activations each on average (their cost is memory traffic, which batching only makes
  less cache-friendly).

Both thresholds come from ``benchmarks/bench_batched_models.py`` on a 2-core CPU
(docs/batched.md): ratios of one-by-one to batched time, idle, B = 16, by bytes per
operator -- Transformer 3 kB 1.64x, volume MLP 7 kB 1.07x (its matrix products already
run at the core's peak alone), Mamba-2 10 kB 1.23x, then below one: volume CNN 100 kB
0.92x, a 784-1024-1024-10 MLP at batch 512 (4.9 GFLOP, 120 kB) 0.76x.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

PAYS_BELOW_FLOPS = {"cpu": 2e9, "cuda": 5e11}
"""One run's step (forward + backward) above which batching stops paying, by device type.

CPU: measured (module docstring). CUDA: an estimate, to be measured where a GPU is: a
step of ~0.5 TFLOP keeps an H100-class GPU busy for about as long as a training step's
~1000 operator launches take."""
CPU_PAYS_BELOW_BYTES_PER_OP = 32 * 1024
"""On CPU, batching pays while a step's operators handle fewer activation bytes than
this each, on average (measured, module docstring)."""
CPU_MEMORY_SHARE = 0.25
"""Share of the available memory a batch may use on CPU (other workers share it)."""
CUDA_MEMORY_SHARE = 0.8
"""Share of the free GPU memory a batch may use."""


@dataclass(frozen=True)
class StepCost:
    """One run's training step: floating-point operations, activation bytes, operators."""

    flops: float
    saved_bytes: int
    param_bytes: int
    ops: int = 1

    @property
    def bytes_per_op(self) -> float:
        """Activation bytes an operator of the step handles on average."""
        return self.saved_bytes / max(1, self.ops)


@dataclass(frozen=True)
class BatchPlan:
    """The units a set of runs trains in, and why."""

    runs: int
    batch: int
    units: list[list[int]]
    per_run_bytes: int
    budget_bytes: int
    cost: StepCost
    device: str
    pays: bool

    reason: str = ""

    def describe(self) -> str:
        """One line for the log: B, the units, and the figures it was chosen from."""
        step = (f"{_si(self.cost.flops)}FLOP, {self.cost.ops} operators, "
                f"{_si(self.cost.bytes_per_op)}B of activations an operator, a step")
        if not self.pays:
            return f"batched training: {self.runs} runs one by one: {self.reason} ({step})"
        return (f"batched training: {self.runs} runs in {len(self.units)} unit(s) of at most "
                f"{self.batch} (per run ~{_si(self.per_run_bytes)}B of a "
                f"{_si(self.budget_bytes)}B budget on {self.device}; {step})")


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} "


class OpCounter(TorchDispatchMode):
    """Counts the operators a computation dispatches (each a kernel launch on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def step_cost(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor) -> StepCost:
    """Measure one forward + backward of ``model`` on the mini-batch ``(x, y)``."""
    params = [p for p in model.parameters() if p.requires_grad]
    param_ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[tuple] = set()
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key[0] not in param_ptrs and key not in seen:
            seen.add(key)
            saved += t.numel() * t.element_size()
        return t

    flops, ops = FlopCounterMode(display=False), OpCounter()
    with flops, ops, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn(model(x), y).mean()
        if params:
            torch.autograd.grad(loss, params)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return StepCost(float(flops.get_total_flops()), saved, param_bytes, ops.ops)


def memory_budget(device: torch.device) -> int:
    """Bytes a batch may use on ``device`` (a share of what is free now)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_MEMORY_SHARE)
    return int(_available_host_memory() * CPU_MEMORY_SHARE)


def _available_host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def per_run_bytes(cost: StepCost, optimizer_states: int, sam: bool) -> int:
    """Memory one run of a batch needs (module docstring)."""
    copies = 4 + 2 * optimizer_states + (2 if sam else 0)
    return int(cost.param_bytes * copies + 2 * cost.saved_bytes)


def split_units(n: int, batch: int) -> list[list[int]]:
    """Runs 0..n-1 cut into ceil(n / batch) nearly equal consecutive units."""
    parts = math.ceil(n / batch)
    small, extra = divmod(n, parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + small + (i < extra))
    return [list(range(a, b)) for a, b in zip(bounds, bounds[1:])]


def cpu_cache_bytes() -> int:
    """The last-level cache of this machine's CPU (sysfs), or 32 MiB if unknown."""
    for index in range(4, -1, -1):
        path = f"/sys/devices/system/cpu/cpu0/cache/index{index}/size"
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
        return int(text.rstrip("KMG")) * scale
    return 32 * 1024**2


def _why_not(cost: StepCost, device: torch.device) -> str:
    """Why batching would not pay for this step on ``device`` ("" if it would)."""
    limit = PAYS_BELOW_FLOPS.get(device.type, PAYS_BELOW_FLOPS["cuda"])
    if cost.flops >= limit:
        return f"a step already fills the {device.type} (batching pays below {_si(limit)}FLOP)"
    if device.type == "cpu" and cost.bytes_per_op >= CPU_PAYS_BELOW_BYTES_PER_OP:
        return ("its operators are memory-bound on CPU (batching pays below "
                f"{_si(CPU_PAYS_BELOW_BYTES_PER_OP)}B of activations an operator)")
    return ""


def plan_batches(n_runs: int, cost: StepCost, device: torch.device, optimizer_states: int,
                 sam: bool = False, budget: int | None = None, max_batch: int | None = None,
                 always_batch: bool = False) -> BatchPlan:
    """The units ``n_runs`` runs train in (see the module docstring)."""
    budget = memory_budget(device) if budget is None else int(budget)
    need = per_run_bytes(cost, optimizer_states, sam)
    reason = "" if always_batch else _why_not(cost, device)
    batch = 1
    if not reason:
        batch = min(n_runs, budget // max(1, need), max_batch or n_runs)
        if device.type == "cpu" and not always_batch:
            batch = min(batch, 2 * cpu_cache_bytes() // max(1, cost.saved_bytes))
        batch = max(1, int(batch))
    return BatchPlan(n_runs, batch, split_units(n_runs, batch), need, budget, cost,
                     device.type, not reason, reason)
