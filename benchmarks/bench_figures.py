"""Benchmark: every analysis figure of a 100-run grid, timed one by one.

    .venv/bin/python benchmarks/bench_figures.py [--seeds 17] [--epochs 1000] [--keep]

The grid: 3 potential settings (quadratic, lp p=1.5, lp p=3) x depths {1, 2} x 17 seeds
= 102 runs of 1,000 logged epochs. Its three tables (raw runs, aggregated finals,
aggregated curves: 6 conditions x 1,000 epochs x 11 metrics) are synthesized with numpy
and pandas in the shapes ``sweeplab analyze`` produces, with realistic values (angles
decaying to a setting-dependent limit, margin ratios approaching 1, balance drift growing
slowly for L = 2 and absent for L = 1); six 2-D runs get ``dataset.npz`` (512 points) and
``directions.json`` for the decision boundaries. Only the drawing is timed (png + pdf).

Prints each figure's time and the total against the target: all figures in < 30 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sweeplab.analysis import plotting
from sweeplab.studies.implicit_bias import plots

TARGET_S = 30.0
SETTINGS = [("quadratic", 1.5), ("lp", 1.5), ("lp", 3.0)]
DEPTHS = [1, 2]
BASELINES = ["svm", "logreg", "lp_max_margin", "linear_md"]
LIMITS = {  # final angle (degrees) to each baseline, per potential setting
    ("quadratic", 1.5): [0.5, 4.0, 0.5, 1.0],
    ("lp", 1.5): [6.0, 9.0, 1.5, 2.0],
    ("lp", 3.0): [4.0, 3.0, 2.0, 0.8],
}


def synthesize_runs(seeds: int, epochs: int) -> pd.DataFrame:
    """Per-epoch metrics of every run (long format): potential, p, L, seed, epoch, metrics."""
    rng = np.random.default_rng(0)
    t = np.arange(epochs, dtype=float)
    frames = []
    for potential, p in SETTINGS:
        for depth in DEPTHS:
            for seed in range(seeds):
                decay = (1 + t / (20 + 10 * rng.random())) ** -0.8
                cols: dict[str, np.ndarray] = {"epoch": t}
                for name, limit in zip(BASELINES, LIMITS[(potential, p)]):
                    start = 25 + 15 * rng.random()
                    final = limit * (1 + 0.3 * rng.standard_normal()) + (depth - 1) * 0.7
                    cols[f"angle_{name}"] = np.abs(final + (start - final) * decay)
                gap = 0.08 * (1 + 0.2 * rng.standard_normal())
                cols["margin_l2_ratio"] = 1 - gap / np.log(t + np.e) - 0.02 * decay
                cols["margin_p_ratio"] = 1 - 1.2 * gap / np.log(t + np.e) - 0.03 * decay
                cols["margin_l2"] = 0.93 * cols["margin_l2_ratio"]
                cols["margin_p"] = 1.05 * cols["margin_p_ratio"]
                cols["loss"] = 0.7 / (1 + t / 30)
                cols["train_acc"] = np.minimum(1.0, 0.9 + t / 200)
                if depth > 1:
                    rate = 2e-6 * (1 + 0.3 * rng.random()) * (2 if potential == "lp" else 1)
                    cols["balance_drift_max"] = rate * np.sqrt(t) * (1 + 0.1 * rng.random())
                    cols["align_min"] = 1 - 0.5 * np.exp(-t / (30 + 20 * rng.random()))
                    cols["rank1_min"] = 1 - 0.25 * np.exp(-t / (60 + 20 * rng.random()))
                else:
                    for key in ("balance_drift_max", "align_min", "rank1_min"):
                        cols[key] = np.full(epochs, np.nan)
                frame = pd.DataFrame(cols)
                frame["potential"], frame["p"] = potential, p
                frame["L"], frame["seed"] = depth, seed
                frames.append(frame)
    long = pd.concat(frames, ignore_index=True)
    long["condition"] = [
        f"{plots.potential_setting(pot, p)}, L={d}"
        for pot, p, d in zip(long["potential"], long["p"], long["L"])
    ]
    return long


def tables(long: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(runs, finals, curves) as ``sweeplab analyze`` builds them."""
    keys = ["condition", "potential", "p", "L"]
    metrics = [c for c in long.columns if c not in keys + ["seed", "epoch"]]
    grouped = long.groupby(keys + ["epoch"], sort=False)[metrics]
    curves = pd.concat(
        [grouped.mean().add_suffix("_mean"), grouped.std().add_suffix("_std"),
         grouped.count().add_suffix("_count")], axis=1).reset_index()
    last = long[long["epoch"] == long["epoch"].max()]
    runs = last[keys[1:] + ["seed"]].copy()
    for m in metrics:
        runs[f"final.{m}"] = last[m].to_numpy()
    by = last.groupby(keys, sort=False)[metrics]
    mean, std, count = by.mean(), by.std(), by.count()
    half = 2.12 * std / np.sqrt(count)  # t(0.975, 16) for 17 seeds
    finals = pd.concat(
        [mean.add_suffix("_mean"), std.add_suffix("_std"), by.min().add_suffix("_min"),
         by.max().add_suffix("_max"), (mean - half).add_suffix("_ci_low"),
         (mean + half).add_suffix("_ci_high"), count.add_suffix("_count")], axis=1).reset_index()
    finals["count"] = by.size().to_numpy()
    return runs.reset_index(drop=True), finals, curves


def write_2d_runs(root: Path, n_runs: int = 6, n_points: int = 512) -> list[Path]:
    """Run directories with ``dataset.npz`` and ``directions.json`` of 2-D Gaussian blobs."""
    rng = np.random.default_rng(1)
    dirs = []
    for i, ((potential, p), depth) in enumerate(
            (s, d) for s in SETTINGS for d in DEPTHS):
        if i >= n_runs:
            break
        y = np.where(rng.random(n_points) < 0.5, -1.0, 1.0)
        X = y[:, None] * np.array([1.5, -1.5]) + 0.8 * rng.standard_normal((n_points, 2))
        def near(scale: float) -> list[float]:
            return (np.array([1.0, -1.0]) + scale * rng.standard_normal(2)).tolist()

        run = root / f"potential={potential},p={p:g},L={depth},seed=0"
        run.mkdir(parents=True)
        np.savez_compressed(run / "dataset.npz", X=X, y=y)
        (run / "directions.json").write_text(json.dumps({
            "end_to_end": near(0.1), "svm": near(0.1), "logreg": near(0.2),
            "lp_max_margin": near(0.1) if potential == "lp" else None,
            "linear_md": near(0.05), "lp_p": p,
        }))
        dirs.append(run)
    return dirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=17)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the figures; print where")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-figures-"))
    t0 = time.perf_counter()
    runs, finals, curves = tables(synthesize_runs(args.seeds, args.epochs))
    run_dirs = write_2d_runs(work / "runs")
    setup = time.perf_counter() - t0
    figs = work / "figs"
    print(f"figure benchmark: {len(runs)} runs, {len(finals)} conditions, "
          f"{len(curves)} curve rows ({args.epochs} epochs), 6 2-D runs; "
          f"tables synthesized in {setup:.2f}s")

    jobs = {
        "angles over time (4 panels)": lambda: plots.plot_angles_over_time(curves, figs / "angles"),
        "margins over time (2 panels)": lambda: plots.plot_margins_over_time(
            curves, figs / "margins"),
        "norm balance over time": lambda: plots.plot_norm_balance(curves, figs / "balance"),
        "alignment over time (2 panels)": lambda: plots.plot_alignment(curves, figs / "align"),
        "generic curves (loss)": lambda: plotting.plot_curves(
            curves, "loss", figs / "loss", ylabel="loss", title="Training loss"),
        "heatmaps (balance, alignment)": lambda: plots.plot_heatmaps(finals, figs / "heatmap"),
        "generic heatmap (angle_svm)": lambda: plotting.plot_heatmap(
            finals.assign(setting=plots._settings(finals)), "setting", "L", "angle_svm",
            figs / "heatmap_angle_svm", "Final angle to the SVM"),
        "final boxplots (angles, margins)": lambda: plots.plot_final_boxplots(
            runs, figs / "boxplot"),
        "decision boundaries (6 runs)": lambda: plots.plot_decision_boundaries(
            run_dirs, figs / "decision_boundaries"),
    }
    total = 0.0
    n_files = 0
    width = max(map(len, jobs))
    for name, job in jobs.items():
        start = time.perf_counter()
        paths = job()
        elapsed = time.perf_counter() - start
        total += elapsed
        n_files += len(paths)
        print(f"  {name:<{width}}  {elapsed:6.2f} s  ({len(paths)} files)")
    verdict = "met" if total < TARGET_S else "NOT met"
    print(f"  {'all figures':<{width}}  {total:6.2f} s  ({n_files} files); "
          f"target < {TARGET_S:.0f} s: {verdict} ({TARGET_S / total:.1f}x headroom)")
    if args.keep:
        print(f"figures in {figs}")
    else:
        shutil.rmtree(work)
    return 0 if total < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
