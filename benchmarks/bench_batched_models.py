"""Benchmark: B small models trained as one batch against the same runs one by one.

    .venv/bin/python benchmarks/bench_batched_models.py [--repeats 3] [--sizes 16 64]
        [--models mlp mlp2 cnn mamba mamba-cpu transformer large-mlp] [--threads 1]
        [--skip-compare] [--skip-executor] [--skip-formulations] [--skip-projection]

For each model, B runs (seeds and learning rates of a grid) of ``steps`` optimizer steps:

1. batched: :func:`sweeplab.batched.train_batched`, the whole call (models built, step
   measured, stacked, trained, unstacked), all B runs in one batch (``always_batch``);
2. one by one: the same runs in the same warm process, each the plain PyTorch loop a
   study runs alone (``torch.manual_seed``, the model, ``torch.optim``, ``randperm``
   batches; anchor models also check each loss and clip, as their study does).

Models: the minima-volume MLP (784-128-10, batch 64, Adam) and CNN (channels 8, 16 on
28x28, batch 64, Adam), an agent-sized MLP (784-128-128-10; ``mlp2``, not in the default
list), the anchor studies' Mamba-2 (d_model 32, d_state 128, 2 layers,
8 tokens, batch 32, AdamW + clipping; Chen et al. 2025 App. E.1; and d_state 32 at batch
64, the ``_cpu`` configs') and Transformer (d_model 32), and a large MLP
(784-1024-1024-10, batch 512) where batching stops paying.
Each figure is measured ``--repeats`` times, batched and one-by-one interleaved, and
printed as runs/s (min and median over repeats), the median of the repeats' ratios
(one-by-one time / batched time; the range in brackets), the ceiling of that ratio
(one by one's time over the time of its matrix products and convolutions, which batching
cannot speed up on CPU: :func:`product_seconds`), and what ``train_batched`` chooses by itself
on CPU ("B<=k": batches of at most k; "alone": one by one). Times
are CPU time of this process (``--wall``: wall time): the machine may be shared.

Then: the same runs, ``EXECUTOR_EPOCHS`` times longer, as a grid through sweeplab's
local executor with 2 workers of one thread (the study in ``batched_models_study.py``),
each worker training its share batched vs one by one: wall time of the whole grid.

Then: the three ways to compute B forward/backward passes (``func``: vmap(grad);
``vmap``: vmap forward + autograd; ``hand``: bmm / grouped conv) per training step, and
the projected wall time on an H100-class GPU of the paper-scale phase diagram, from the
measured FLOPs and operator counts of a step (assumptions printed with it).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sweeplab.batched import RunSpec, TrainData, TrainSettings, optim, train_batched
from sweeplab.batched.memory import PAYS_BELOW_FLOPS, OpCounter, plan_batches, step_cost
from sweeplab.batched.objective import Objective
from sweeplab.batched.stack import StackedModel
from sweeplab.studies.anchor.models import build_model
from sweeplab.studies.anchor.tasks import COMPOSITE_VOCAB, SEQ_LEN, composite_splits
from sweeplab.studies.volume.models import mlp as volume_mlp
from sweeplab.studies.volume.models import small_cnn

H100_FP32_FLOPS = 67e12
"""H100 SXM peak dense FP32 (non-tensor-core) rate; torch's default float32 matmuls."""
GPU_EFFICIENCY = 0.4
"""Share of that peak a batched step of small matmuls sustains (assumed)."""
OP_OVERHEAD_S = 8e-6
"""Host time per dispatched operator in eager PyTorch (Python, dispatcher, launch): a
step of k operators takes at least k times this whatever the device (assumed; ~5-10 us)."""


@dataclass
class Case:
    """One model of the benchmark: how to build it, its data, batch and recipe."""

    name: str
    make: Callable[[RunSpec], nn.Module]
    data: TrainData
    batch_size: int
    optimizer: str
    steps: int
    clip: float | None = None
    check_loss: bool = False

    def run(self, seed: int, epochs: int | None = None) -> RunSpec:
        """Run ``seed`` of the grid: its lr cycles through 1e-3 .. 4e-3."""
        epochs = epochs or max(1, self.steps * self.batch_size // len(self.data))
        return RunSpec(seed=seed, lr=1e-3 * (1 + seed % 4), epochs=epochs, weight_decay=0.01,
                       grad_clip=self.clip)

    def runs(self, b: int) -> list[RunSpec]:
        return [self.run(s) for s in range(b)]


def _images(n: int) -> TrainData:
    gen = torch.Generator().manual_seed(0)
    return TrainData(torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,),
                                                                            generator=gen))


def _tokens(n: int) -> TrainData:
    split = composite_splits(n, 0, 0, seed=0)["train"].tensors()
    return TrainData(split["tokens"], split["labels"])


def cases(names: list[str]) -> list[Case]:
    anchor = lambda kind, d_state=128: lambda run: build_model(  # noqa: E731
        kind, COMPOSITE_VOCAB, SEQ_LEN, 2, d_model=32, d_state=d_state, gamma=1.0)
    every = {
        "mlp": lambda: Case("volume MLP 784-128-10, batch 64",
                            lambda r: volume_mlp(784, (128,), 10), _images(64 * 30), 64,
                            "adam", 30),
        "mlp2": lambda: Case("MLP 784-128-128-10, batch 64 (agent's)",
                             lambda r: volume_mlp(784, (128, 128), 10), _images(64 * 30), 64,
                             "adam", 30),
        "cnn": lambda: Case("volume CNN (8, 16) 28x28, batch 64",
                            lambda r: small_cnn((28, 28), (8, 16), 10), _images(64 * 10), 64,
                            "adam", 10),
        "mamba": lambda: Case("anchor Mamba-2 d32 s128 L2, batch 32", anchor("mamba_standard"),
                              _tokens(32 * 10), 32, "adamw", 10, clip=1.0, check_loss=True),
        "mamba-cpu": lambda: Case("anchor Mamba-2 d32 s32 L2, batch 64 (_cpu)",
                                  anchor("mamba_standard", 32), _tokens(64 * 10), 64, "adamw",
                                  10, clip=1.0, check_loss=True),
        "transformer": lambda: Case("anchor Transformer d32 L2, batch 32",
                                    anchor("transformer"), _tokens(32 * 10), 32, "adamw", 10,
                                    clip=1.0, check_loss=True),
        "large-mlp": lambda: Case("large MLP 784-1024-1024-10, batch 512",
                                  lambda r: volume_mlp(784, (1024, 1024), 10),
                                  _images(512 * 4), 512, "adam", 4),
    }
    return [every[n]() for n in names]


def per_sample_ce(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(outputs, targets, reduction="none")


def one_by_one(case: Case, runs: list[RunSpec]) -> None:
    """Each run alone: the loop a study runs for one model."""
    x, y = case.data.inputs, case.data.targets
    for run in runs:
        torch.manual_seed(run.seed)
        model = case.make(run)
        cls = torch.optim.AdamW if case.optimizer == "adamw" else torch.optim.Adam
        opt = cls(model.parameters(), lr=run.lr, weight_decay=run.weight_decay)
        gen = torch.Generator().manual_seed(run.seed)
        for _ in range(run.epochs):
            for idx in torch.randperm(len(y), generator=gen).split(case.batch_size):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                if case.check_loss and not math.isfinite(loss.item()):
                    raise FloatingPointError("loss")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if case.clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), case.clip)
                opt.step()


def batched(case: Case, runs: list[RunSpec]) -> None:
    """All runs through train_batched, batched even where it would train them one by one."""
    results = train_batched(case.make, per_sample_ce, case.data, runs,
                            TrainSettings(optimizer=case.optimizer, batch_size=case.batch_size,
                                          always_batch=True))
    if not all(r.ok for r in results):
        raise RuntimeError(next(r.error for r in results if not r.ok))


CLOCK = time.process_time
"""CPU time of this process (one thread): on a shared machine wall time also counts the
other processes' turns on the cores. ``--wall`` measures wall time instead."""


def _timed(fn: Callable[[], None]) -> float:
    t0 = CLOCK()
    fn()
    return CLOCK() - t0


def auto_choice(case: Case, b: int) -> str:
    """What train_batched does by itself with these runs on CPU: "batched" or "alone"."""
    model = case.make(case.runs(1)[0])
    idx = torch.arange(case.batch_size)
    cost = step_cost(model, per_sample_ce, case.data.inputs[idx], case.data.targets[idx])
    plan = plan_batches(b, cost, torch.device("cpu"), 2)
    return f"B<={plan.batch}" if plan.pays else "alone"


PRODUCTS = ("mm", "addmm", "bmm", "baddbmm", "mkldnn_convolution",
            "convolution_backward", "mkldnn_convolution_backward",
            "_slow_conv2d_forward", "_slow_conv2d_backward")
"""Operators that do a step's matrix products and convolutions (their kernels)."""


def product_seconds(case: Case) -> float:
    """CPU seconds one run alone spends in its matrix products and convolutions.

    Batching cannot make those faster on CPU (one 64x784 @ 784x128 product alone already
    runs at the core's peak: ~95 GFLOP/s here, a bmm of 16 at ~75); at best it makes
    everything else free, so one by one's time over this bounds the ratio from above
    (the ceiling). Measured with torch's profiler over 4 runs (its per-operator cost
    inflates the other operators, not the products' kernels); one by one's own time is
    measured without it.
    """
    from torch.profiler import ProfilerActivity, profile

    if case.name in _PRODUCTS:
        return _PRODUCTS[case.name]
    runs = case.runs(4)
    one_by_one(case, runs[:1])
    sys.stderr.flush()
    saved = os.dup(2)  # the profiler's C++ side writes two lines to fd 2 per use
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
        try:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                one_by_one(case, runs)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    products = sum(e.self_cpu_time_total for e in prof.key_averages()
                   if e.key.removeprefix("aten::") in PRODUCTS)
    _PRODUCTS[case.name] = products * 1e-6 / len(runs)
    return _PRODUCTS[case.name]


_PRODUCTS: dict[str, float] = {}


TARGETS = {"mlp": 3.0, "mamba": 2.0}
"""The issue's CPU targets at B = 16 (one by one / batched): the volume MLP and the
anchor Mamba-2."""


def compare(case: Case, b: int, repeats: int) -> tuple[float, float]:
    """Print one row of the table; (the median ratio, the ceiling)."""
    runs = case.runs(b)
    batched(case, runs[:2])  # warm both paths (imports, first-call costs)
    one_by_one(case, runs[:1])
    tb, ta = [], []
    for _ in range(repeats):
        tb.append(_timed(lambda: batched(case, runs)))
        ta.append(_timed(lambda: one_by_one(case, runs)))
    rb, ra = [b / t for t in tb], [b / t for t in ta]
    ratios = [a / c for a, c in zip(ta, tb)]  # each repeat's pair, measured back to back
    ceiling = statistics.median(ta) / b / product_seconds(case)
    print(f"  {case.name:<40}{b:>4}  {min(rb):>8.2f} {statistics.median(rb):>8.2f}  "
          f"{min(ra):>8.2f} {statistics.median(ra):>8.2f}  {statistics.median(ratios):>6.2f}x"
          f" ({min(ratios):.2f}-{max(ratios):.2f})  {ceiling:>6.1f}x  "
          f"{auto_choice(case, b)}")
    return statistics.median(ratios), ceiling


def report_targets(measured: dict[str, tuple[float, float]], chosen: dict[str, Case]) -> None:
    """One line per target of ``TARGETS`` that was measured at B = 16: the ratio, met or
    not, and the ceiling (one by one over its products) it is bounded by."""
    for name, target in TARGETS.items():
        if name in measured:
            ratio, ceiling = measured[name]
            verdict = "met" if ratio >= target else "not met"
            print(f"  target: {chosen[name].name}, B = 16: {ratio:.2f}x against "
                  f">= {target:.0f}x ({verdict}; ceiling {ceiling:.1f}x)")


# ----------------------------------------------------------------------- executor

EXECUTOR_EPOCHS = 10
"""The executor comparison's runs are this many times longer than the warm-process
comparison's (300 steps for the volume MLP), so the workers' start is not all it sees."""


def grid_seconds(name: str, b: int, batch: bool) -> float:
    """Wall seconds of a grid of ``b`` runs of case ``name`` on sweeplab's local executor
    (2 workers x 1 thread), from the grid's start to its end (workers started inside)."""
    import tempfile

    from sweeplab.execute.driver import run_grid
    from sweeplab.execute.local import LocalExecutor

    study = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batched_models_study.py")
    spec = {"study": f"{study}:bench-batched-models", "name": "bench",
            "fixed": {"model": name, "epochs": EXECUTOR_EPOCHS},
            "grid": {"seed": list(range(b))}}
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_grid(spec, out, executor=LocalExecutor(2, threads=1, batch=batch),
                          batch=batch, fresh=True)
        seconds = time.perf_counter() - t0
    states = set(result.states.values())
    if states != {"done"}:
        raise RuntimeError(f"executor grid of {name}: run states {sorted(states)}")
    return seconds


def executor_compare(name: str, label: str, b: int, repeats: int) -> None:
    walls = {batch: [grid_seconds(name, b, batch) for _ in range(repeats)]
             for batch in (True, False)}
    best = {batch: min(v) for batch, v in walls.items()}
    print(f"  {label:<40}{b:>4}  {b / best[True]:>8.2f}  {b / best[False]:>10.2f}  "
          f"{best[False] / best[True]:>6.2f}x")


# ----------------------------------------------------------------------- formulations


def step_seconds(case: Case, b: int, formulation: str, repeats: int, steps: int = 5) -> float:
    """Seconds per forward+backward of B runs (min over repeats of ``steps`` steps)."""
    models = []
    for s in range(b):
        torch.manual_seed(s)
        models.append(case.make(RunSpec(seed=s, lr=1e-3, epochs=1)))
    stack = StackedModel(models)
    objective = Objective(stack, per_sample_ce, formulation)
    params = {n: stack.params[n] for n in stack.trainable}
    idx = torch.stack([torch.randperm(len(case.data), generator=torch.Generator().manual_seed(s))
                       [:case.batch_size] for s in range(b)])
    x, y = case.data.inputs[idx], case.data.targets[idx]
    w = torch.ones(b, case.batch_size)
    count = torch.full((b,), float(case.batch_size))
    objective.value_and_grad(params, x, y, w, count)
    best = math.inf
    for _ in range(repeats):
        best = min(best, _timed(lambda: [objective.value_and_grad(params, x, y, w, count)
                                         for _ in range(steps)]) / steps)
    return best


def formulations(chosen: list[Case], b: int, repeats: int) -> None:
    print(f"\nforward + backward of B = {b} runs, ms a step (min of {repeats}); auto picks "
          "hand where it applies, else vmap")
    print(f"  {'model':<40}{'func':>10}{'vmap':>10}{'hand':>10}")
    for case in chosen:
        row = []
        for formulation in ("func", "vmap", "hand"):
            try:
                row.append(f"{1e3 * step_seconds(case, b, formulation, repeats):>10.1f}")
            except ValueError:
                row.append(f"{'-':>10}")
        print(f"  {case.name:<40}{''.join(row)}")


# ----------------------------------------------------------------------- GPU projection


def step_profile(case: Case, b: int) -> tuple[float, int]:
    """(FLOPs, operators) of one training step of B runs, batched (b > 1) or alone (b == 1)."""
    runs = case.runs(b)
    for run in runs:
        run.epochs = 1
    counter, flops = OpCounter(), FlopCounterMode(display=False)
    data = TrainData(case.data.inputs[:case.batch_size], case.data.targets[:case.batch_size])
    if b == 1:
        torch.manual_seed(0)
        model = case.make(runs[0])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)  # as on CUDA
        with flops, counter:
            loss = F.cross_entropy(model(data.inputs), data.targets)
            if case.check_loss:
                loss.item()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if case.clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), case.clip, foreach=True)
            opt.step()
        return flops.get_total_flops(), counter.ops
    # one step of a batch: the ops of a two-step batch minus those of a one-step batch,
    # each parameter's update in one piece (as on CUDA; CPU updates a few runs at a time)
    chunk, optim.CPU_CHUNK_BYTES = optim.CPU_CHUNK_BYTES, 1 << 62
    totals = []
    for steps in (1, 2):
        data = TrainData(case.data.inputs[:case.batch_size * steps],
                         case.data.targets[:case.batch_size * steps])
        counter, flops = OpCounter(), FlopCounterMode(display=False)
        with flops, counter:
            train_batched(case.make, per_sample_ce, data, runs,
                          TrainSettings(optimizer=case.optimizer, batch_size=case.batch_size,
                                        sync_every=64, always_batch=True))
        totals.append((flops.get_total_flops(), counter.ops))
    optim.CPU_CHUNK_BYTES = chunk
    return totals[1][0] - totals[0][0], totals[1][1] - totals[0][1]


def gpu_seconds(flops: float, ops: int) -> float:
    """A step on the GPU: compute at the assumed rate, or the operators' host time."""
    return max(flops / (H100_FP32_FLOPS * GPU_EFFICIENCY), ops * OP_OVERHEAD_S)


def projection(mamba: Case) -> None:
    """The anchor phase diagram (5 depths x 6 gammas x 3 seeds = 90 runs, 300,000
    samples, d_model 32, d_state 128) on one H100-class GPU, one run after another vs
    the 18 runs of a depth batched, at the spec's batch 32 (210 epochs) and the
    paper's batch 2048 (200 epochs)."""
    print("\nprojected wall time on one H100-class GPU: the anchor phase diagram, 90 runs "
          f"(assumed: {GPU_EFFICIENCY:.0%} of {H100_FP32_FLOPS / 1e12:.0f} TFLOP/s fp32, "
          f"{OP_OVERHEAD_S * 1e6:.0f} us host time per operator)")
    print(f"  {'protocol':<34}{'FLOP/step':>11}{'ops alone':>10}{'ops B=18':>9}"
          f"{'one by one':>12}{'batched':>10}{'ratio':>8}")
    alone_flops, alone_ops = step_profile(mamba, 1)
    b_flops, b_ops = step_profile(mamba, 18)
    for label, batch, epochs in (("spec: batch 32, 210 epochs", 32, 210),
                                 ("paper: batch 2048, 200 epochs", 2048, 200)):
        scale = batch / mamba.batch_size
        steps = math.ceil(300_000 / batch) * epochs
        hours_alone = hours_batched = 0.0
        for depth in (2, 3, 4, 5, 6):  # FLOPs and ops grow with the depth (2 layers measured)
            grow = depth / 2
            hours_alone += 18 * steps * gpu_seconds(alone_flops * scale * grow,
                                                    int(alone_ops * grow)) / 3600
            hours_batched += steps * gpu_seconds(b_flops * scale * grow, int(b_ops * grow)) / 3600
        print(f"  {label:<34}{alone_flops * scale:>11.3g}{alone_ops:>10}{b_ops:>9}"
              f"{hours_alone:>10.1f} h{hours_batched:>8.1f} h{hours_alone / hours_batched:>7.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--models", nargs="+",
                        default=["mlp", "cnn", "mamba", "mamba-cpu", "transformer",
                                 "large-mlp"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--skip-formulations", action="store_true")
    parser.add_argument("--skip-projection", action="store_true")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-executor", action="store_true")
    parser.add_argument("--wall", action="store_true", help="wall time, not CPU time")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.perf_counter if args.wall else time.process_time
    torch.set_num_threads(args.threads)
    print(f"batched vs one-by-one training; {args.threads} thread(s), {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; {'wall' if args.wall else 'CPU'} time; torch "
          f"{torch.__version__}; command: "
          f"{' '.join([os.path.basename(sys.executable), *sys.argv])}")
    chosen = cases(args.models)
    if not args.skip_compare:
        print(f"\nruns/s (runs of 30 steps for the volume MLP, 10 for CNN/Mamba/Transformer, "
              f"4 for the large MLP); min and median of {args.repeats}")
        print(f"  {'model':<40}{'B':>4}  {'batched':>17}  {'one by one':>17}  {'ratio':>7}"
              f"{'':>13}  {'ceiling':>7}  auto")
        at16 = {}
        for name, case in zip(args.models, chosen):
            sizes = [16] if case.name.startswith("large") else args.sizes
            for b in sizes:
                measured = compare(case, b, args.repeats)
                if b == 16:
                    at16[name] = measured
        report_targets(at16, dict(zip(args.models, chosen)))
        large = [c for c in chosen if c.name.startswith("large")]
        if large:
            cost = step_profile(large[0], 1)[0]
            print(f"  (large MLP, forced into one batch: {cost / 1e9:.1f} GFLOP a step; above "
                  f"{PAYS_BELOW_FLOPS['cpu'] / 1e9:.0f} GFLOP a step on CPU, train_batched "
                  "trains "
                  "one by one by itself)")
    if not args.skip_executor:
        print(f"\nthrough sweeplab's local executor, 2 workers x 1 thread, runs of "
              f"{EXECUTOR_EPOCHS}x the length above; wall time of the whole grid (workers' "
              f"start included), runs/s, best of {args.repeats}; batched: each worker "
              "trains its share as one batch")
        print(f"  {'model':<40}{'B':>4}  {'batched':>8}  {'one by one':>10}  {'ratio':>7}")
        for case, name in zip(chosen, args.models):
            if auto_choice(case, 16) == "alone":
                continue  # train_batched trains these one by one by itself
            for b in args.sizes:
                executor_compare(name, case.name, b, args.repeats)
    if not args.skip_formulations:
        formulations([c for c in chosen if not c.name.startswith("large")], 16, args.repeats)
    mamba = [c for c in chosen if "Mamba-2 d32 s128" in c.name]
    if mamba and not args.skip_projection:
        projection(mamba[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
