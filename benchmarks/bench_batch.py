"""Benchmark: batched runs against warm unbatched workers and one process per run.

    .venv/bin/python benchmarks/bench_batch.py [--epochs 1000] [--sample 40]
                                               [--skip-300] [--skip-processes]

Two grids of the implicit-bias study, each three ways, in one invocation:

- the 18-run synthetic grid (``runs/configs/synthetic_potentials.yaml``), and
- a 300-run grid: 10 seeds x 5 learning rates x 6 values of p (lp potential, L = 2),

1. ``sweeplab grid --batch auto``: compatible runs stacked into one computation per
   worker (the default);
2. ``sweeplab grid --batch off``: warm workers, one run after another;
3. one process per run (``sweeplab run ...``), two at a time on the two cores, what a
   bash loop with ``xargs -P 2`` does. With ``--sample N`` only N runs are started this
   way and the time is scaled to the grid (the per-run cost is flat; the sample is said).

Then an estimate of the physical limit of the batched computation: the floating-point
work per step (forward, exact gradients, mirror step, metrics) of all runs at the
machine's measured float64 batched-matmul rate, next to the measured batched time.
Prints wall times and ratios. Target: the 300-run grid at least 20x faster batched than
one process per run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SPEC_18 = REPO / "runs" / "configs" / "synthetic_potentials.yaml"
SEEDS = list(range(10))
LRS = [0.02, 0.05, 0.1, 0.2, 0.4]
PS = [1.25, 1.5, 2.0, 2.5, 3.0, 4.0]


def timed(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def spec_300(epochs: int) -> dict:
    return {"study": "implicit-bias", "name": "batch-300",
            "fixed": {"potential": "lp", "L": 2, "epochs": epochs, "plots": False},
            "grid": {"seed": SEEDS, "lr": LRS, "p": PS}}


def runs_300(epochs: int) -> list[list[str]]:
    return [["--potential", "lp", "--L", "2", "--epochs", str(epochs), "--seed", str(s),
             "--lr", str(lr), "--p", str(p)] for s, lr, p in itertools.product(SEEDS, LRS, PS)]


def runs_18(spec: dict, epochs: int) -> list[list[str]]:
    settings = [("quadratic", None), ("lp", 1.5), ("lp", 3.0)]
    out = []
    for (potential, p), depth, seed in itertools.product(settings, spec["depths"],
                                                         spec["seeds"]):
        flags = ["--potential", potential, "--L", str(depth), "--seed", str(seed),
                 "--epochs", str(epochs), "--lr", str(spec["lr"])]
        out.append(flags + (["--p", str(p)] if p is not None else []))
    return out


def process_per_run(
    flag_sets: list[list[str]], out: Path, sample: int | None
) -> tuple[float, str]:
    """Wall time of one ``sweeplab run`` process per run, two at a time (scaled if sampled)."""
    chosen = flag_sets if not sample or sample >= len(flag_sets) else flag_sets[:sample]
    cmds = [[sys.executable, "-m", "sweeplab", "run", "implicit-bias", *flags, "--plots",
             "false", "--out_dir", str(out), "-q"] for flags in chosen]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda c: subprocess.run(c, check=True, capture_output=True), cmds))
    wall = time.perf_counter() - t0
    if len(chosen) == len(flag_sets):
        return wall, "all runs"
    scale = len(flag_sets) / len(chosen)
    return wall * scale, f"{len(chosen)} runs, scaled x{scale:.1f}"


def grid(spec_path: Path, work: Path, tag: str, batch: str) -> float:
    return timed([sys.executable, "-m", "sweeplab", "grid", str(spec_path), "--tag", tag,
                  "--batch", batch, "--out_dir", str(work / "grids")], work)


def physical_limit(n_runs: int, epochs: int, n: int = 512, d: int = 2, width: int = 16) -> dict:
    """FLOPs of the batched computation and their time at the measured bmm rate."""
    import torch

    torch.set_num_threads(1)
    # measured float64 rate on batched products of this shape class
    a = torch.randn(n_runs, n, width, dtype=torch.float64)
    b = torch.randn(n_runs, width, width, dtype=torch.float64)
    for _ in range(3):
        torch.bmm(a, b)
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.bmm(a, b)
    rate = 2 * n_runs * n * width * width * reps / (time.perf_counter() - t0)
    # per run and step (L = 2: W1 width x d, W2 1 x width): forward X W1^T, h W2^T;
    # backward: the rank-one gradients (outer products) and the residual; mirror map
    forward = 2 * n * d * width + 2 * n * width
    backward = 2 * n * width + 2 * n * d * width + 2 * n * width
    mirror = 10 * (width * d + width)
    metrics = 4 * n * d + 40 * (width * d + width)  # margins and norms, each logged epoch
    flops = n_runs * epochs * (forward + backward + mirror + metrics)
    return {"flops": flops, "rate": rate, "seconds": flops / rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--sample", type=int, default=None,
                        help="start only this many processes in the process-per-run variant")
    parser.add_argument("--skip-300", action="store_true")
    parser.add_argument("--skip-processes", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-batch-"))
    cores = len(os.sched_getaffinity(0))
    print(f"batched-runs benchmark: implicit-bias, {args.epochs} epochs, metrics every epoch, "
          f"{cores} cores; command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    spec18 = yaml.safe_load(SPEC_18.read_text())
    spec18.update(epochs=args.epochs, plots=False)
    grids = {"18-run synthetic grid": (spec18, runs_18(spec18, args.epochs))}
    if not args.skip_300:
        grids["300-run grid (seed x lr x p)"] = (spec_300(args.epochs), runs_300(args.epochs))

    for title, (spec, flag_sets) in grids.items():
        spec_path = work / f"{len(flag_sets)}.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        tag = f"g{len(flag_sets)}"
        batched = grid(spec_path, work, f"{tag}-batched", "auto")
        warm = grid(spec_path, work, f"{tag}-warm", "off")
        print(f"\n{title}: {len(flag_sets)} runs")
        print(f"  sweeplab grid --batch auto (batched)      {batched:8.1f} s   1.0x")
        print(f"  sweeplab grid --batch off (warm workers)  {warm:8.1f} s  "
              f"{warm / batched:5.1f}x slower")
        if not args.skip_processes:
            wall, how = process_per_run(flag_sets, work / f"{tag}-processes", args.sample)
            print(f"  one process per run, 2 at a time          {wall:8.1f} s  "
                  f"{wall / batched:5.1f}x slower ({how})")
        if len(flag_sets) == 300:
            limit = physical_limit(300, args.epochs)
            print(f"  physical limit: {limit['flops'] / 1e9:.2f} GFLOP at the measured float64 "
                  f"bmm rate {limit['rate'] / 1e9:.2f} GFLOP/s (one core) = "
                  f"{limit['seconds']:.2f} s on one core, {limit['seconds'] / cores:.2f} s on "
                  f"{cores}; the batched grid takes {batched / (limit['seconds'] / cores):.0f}x "
                  f"that (process start-up, imports, baselines, per-op overhead, file writes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
