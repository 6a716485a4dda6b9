"""Benchmark: the implicit-bias study's hand-written batched mirror descent against the
generic batched trainer (issue 18, part 2: "decide with measurements whether its
hand-written batched path stays").

    .venv/bin/python benchmarks/bench_implicit_bias_paths.py [--runs 18] [--steps 1000]
        [--depths 1 2 3] [--repeats 3]

The work of the seeds grid (``runs/configs/synthetic_potentials.yaml``): B deep linear
networks (width 16, 2-D synthetic data, 512 samples, float64, logistic loss, full batch)
trained for ``steps`` steps of gradient descent, the potential both paths can run
(quadratic mirror descent is plain gradient descent):

1. hand: ``BatchedMirrorDescent.step`` (studies/implicit_bias/batched_train.py): exact
   rank-one gradients of the factorization, every run's layers in one (B, P) tensor;
2. generic: ``sweeplab.batched.train_batched`` with SGD (stacked ``nn.Linear`` layers,
   vmap forward and autograd, the batched optimizer), the whole call;
3. one by one: ``torch.optim.SGD`` on each network alone, for reference.

It prints steps/s and the ratios. Only the hand path runs mirror descent with the lp and
hyperbolic-entropy potentials the study is about: the generic optimizers are SGD, Adam
and AdamW. Times are CPU time of this process (the machine may be shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.batched import RunSpec, TrainData, TrainSettings, train_batched
from sweeplab.data.synthetic import make_gaussians
from sweeplab.studies.implicit_bias.batched_train import BatchedMirrorDescent
from sweeplab.studies.implicit_bias.potentials import Quadratic


class LinearNet(nn.Module):
    """f(x) = W_L ... W_1 x as bias-free ``nn.Linear`` layers (what the generic path stacks)."""

    def __init__(self, d: int, depth: int, width: int):
        super().__init__()
        dims = [d] + [width] * (depth - 1) + [1]
        self.layers = nn.Sequential(*[nn.Linear(i, o, bias=False, dtype=torch.float64)
                                      for i, o in zip(dims[:-1], dims[1:])])
        for layer in self.layers:
            nn.init.normal_(layer.weight, std=0.1 / layer.in_features ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)


def logistic(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample logistic loss log(1 + exp(-y f(x)))."""
    return F.softplus(-y * out)


def hand(X, y, runs: int, depth: int, steps: int) -> float:
    nets = []
    for seed in range(runs):
        torch.manual_seed(seed)
        nets.append([lin.weight.detach().clone()
                     for lin in LinearNet(X.shape[1], depth, 16).layers])
    t0 = time.process_time()
    md = BatchedMirrorDescent(nets, [0] * runs, [X.numpy()], [y.numpy()], [0.05] * runs,
                              [Quadratic()] * runs, "logistic")
    for _ in range(steps):
        md.step()
    return time.process_time() - t0


def generic(X, y, runs: int, depth: int, steps: int) -> float:
    specs = [RunSpec(seed=seed, lr=0.05, epochs=steps, log_interval=steps) for seed in range(runs)]
    t0 = time.process_time()
    results = train_batched(
        make_model=lambda run: LinearNet(X.shape[1], depth, 16), loss_fn=logistic,
        data=TrainData(X, y), runs=specs,
        settings=TrainSettings(optimizer="sgd", batch_size=len(y), device="cpu",
                               always_batch=True))
    elapsed = time.process_time() - t0
    failed = [r.error for r in results if r.error is not None]
    if failed:
        raise SystemExit(f"generic path failed: {failed[0]}")
    return elapsed


def one_by_one(X, y, runs: int, depth: int, steps: int) -> float:
    t0 = time.process_time()
    for seed in range(runs):
        torch.manual_seed(seed)
        net = LinearNet(X.shape[1], depth, 16)
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            logistic(net(X), y).mean().backward()
            opt.step()
    return time.process_time() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=18)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = make_gaussians(512, 2, separation=3.0, noise=0.2, seed=0)
    X = torch.as_tensor(data.X, dtype=torch.float64)
    y = torch.as_tensor(data.y, dtype=torch.float64)
    total = args.runs * args.steps
    print(f"{args.runs} deep linear networks x {args.steps} full-batch GD steps, 512 samples, "
          f"width 16, float64, one thread; CPU s (median of {args.repeats}), run-steps/s")
    print(f"  {'L':>2} {'hand':>8} {'generic':>8} {'one by one':>11}   "
          f"{'generic/hand':>12} {'one-by-one/hand':>15}")
    for depth in args.depths:
        times = {name: [] for name in ("hand", "generic", "one")}
        for _ in range(args.repeats):
            times["hand"].append(hand(X, y, args.runs, depth, args.steps))
            times["generic"].append(generic(X, y, args.runs, depth, args.steps))
            times["one"].append(one_by_one(X, y, args.runs, depth, args.steps))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"  {depth:>2} {med['hand']:7.2f}s {med['generic']:7.2f}s {med['one']:10.2f}s   "
              f"{med['generic'] / med['hand']:11.1f}x {med['one'] / med['hand']:14.1f}x"
              f"   ({total / med['hand']:,.0f} / {total / med['generic']:,.0f} / "
              f"{total / med['one']:,.0f} run-steps/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
