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


STEP_FLOPS = 4352
"""Per run and step (L = 2, width 16, n = 512, d = 2): margins X w (2048), gradient X^T r
(2048), the end-to-end product, forward chain, rank-one outer products and dual update."""
STEP_TRANSCENDENTAL = 512 + 48
"""Per run and step: a sigmoid per sample (the logistic loss' derivative) and the pows of
the lp mirror map."""
LOG_FLOPS = 2400
LOG_TRANSCENDENTAL = 1024
"""Per run and logged epoch: margins and norms; exp/log1p of the loss per sample."""
LOG_KEYS = 22


def physical_limit(n_runs: int, epochs: int) -> dict:
    """Seconds the batched work would take at this machine's measured peak rates.

    FLOPs at the float64 GEMM rate of one core, transcendentals at its measured exp rate,
    and the metric rows at the local writer's measured cost per row.
    """
    import tempfile as tf

    import torch

    from sweeplab.track.local import LocalMetricsWriter

    torch.set_num_threads(1)
    a = torch.randn(1024, 1024, dtype=torch.float64)
    a @ a
    t0 = time.perf_counter()
    for _ in range(5):
        a @ a
    gemm = 5 * 2 * 1024**3 / (time.perf_counter() - t0)
    x = torch.randn(1 << 22, dtype=torch.float64)
    torch.exp(x)
    t0 = time.perf_counter()
    for _ in range(5):
        torch.exp(x)
    exp_s = (time.perf_counter() - t0) / (5 * x.numel())
    writer = LocalMetricsWriter(tf.mkdtemp(prefix="sweeplab-bench-rows-"))
    row = {f"metric_{i}": 0.1 * i + 1e-3 for i in range(LOG_KEYS)}
    t0 = time.perf_counter()
    for step in range(5000):
        writer.log(step, row)
    writer.close()
    row_s = (time.perf_counter() - t0) / 5000
    steps = n_runs * epochs
    flops = steps * (STEP_FLOPS + LOG_FLOPS)
    transcendental = steps * (STEP_TRANSCENDENTAL + LOG_TRANSCENDENTAL)
    seconds = flops / gemm + transcendental * exp_s + steps * row_s
    return {"flops": flops, "gemm": gemm, "exp_ns": exp_s * 1e9, "row_us": row_s * 1e6,
            "seconds": seconds}


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
            lim = physical_limit(300, args.epochs)
            per_core = lim["seconds"] / cores
            print(f"  physical limit: {lim['flops'] / 1e9:.1f} GFLOP at the float64 GEMM peak "
                  f"{lim['gemm'] / 1e9:.0f} GFLOP/s, transcendentals at {lim['exp_ns']:.2f} "
                  f"ns, metric rows at {lim['row_us']:.1f} us: {lim['seconds']:.2f} s on one "
                  f"core, {per_core:.2f} s on {cores}")
            print(f"  the batched grid takes {batched / per_core:.0f}x the limit (the rest: "
                  f"process start-up and imports, validation, baselines, per-op overhead of "
                  f"thin tensors, checkpoints)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
