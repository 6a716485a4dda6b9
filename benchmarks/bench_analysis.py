"""Benchmark: loading and aggregating a large sweep (5,000 runs x 1,000 epochs x 25 metrics).

    .venv/bin/python benchmarks/bench_analysis.py [--runs 5000] [--epochs 1000]
        [--data-dir DIR] [--keep]

Generates synthetic but realistic run directories (``config.yaml``, ``status.json``,
``final.json``, ``metrics.jsonl``, as the implicit-bias study writes them: 100
conditions x ``runs/100`` seeds), then times, each printed on its own:

- ``load_runs`` (every config, status and final file);
- ``load_metrics`` cold: parsing every ``metrics.jsonl`` and writing the
  ``metrics.parquet`` caches (the JSONL files are in the OS page cache after generation:
  "cold" means no Parquet cache, not a cold disk);
- ``load_metrics`` warm: the Parquet caches, best of two;
- ``aggregate_final`` + ``aggregate_curves``.

Target: warm load + aggregation under 10 s on a 2-core machine; the line ``target`` says
whether it is met. Generation time is printed apart and is not part of any figure.
``--data-dir`` keeps (and on a later call reuses) the generated runs, deleting their
Parquet caches first so the cold figure stays cold. Figures: see bench_figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from sweeplab.analysis.aggregate import aggregate_curves, aggregate_final
from sweeplab.analysis.load import load_metrics, load_runs
from sweeplab.studies.implicit_bias.analysis import CONDITION_KEYS

METRICS = (
    "loss", "train_acc", "test_acc", "angle_svm", "angle_logreg", "angle_lp_max_margin",
    "angle_linear_md", "margin_l2", "margin_p", "margin_l2_ratio", "margin_p_ratio",
    "e2e_norm", "e2e_norm_p", "norm_1", "norm_2", "align_1", "align_min", "rank1_1",
    "rank1_2", "rank1_min", "balance_1", "balance_drift_1", "balance_drift_max",
    "grad_norm", "step_size",
)
P_VALUES = (1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
DEPTHS = (1, 2, 3, 4, 5)
DATASETS = ("synthetic", "digits")
N_CONDITIONS = len(P_VALUES) * len(DEPTHS) * len(DATASETS)
GRID_NAME = "20260101-000000_bench"
DONE_MARKER = ".bench_generated.json"


def _condition(i: int) -> dict:
    p = P_VALUES[i % len(P_VALUES)]
    depth = DEPTHS[(i // len(P_VALUES)) % len(DEPTHS)]
    dataset = DATASETS[i // (len(P_VALUES) * len(DEPTHS))]
    return {"potential": "lp", "p": p, "L": depth, "dataset": dataset}


def _config(cond: dict, seed: int, epochs: int) -> dict:
    return {
        "dataset": cond["dataset"], "input_dim": 2, "n_samples": 256, "separation": 3.0,
        "noise": 0.2, "digits": [0, 1], "pca": None if cond["dataset"] == "synthetic" else 20,
        "standardize": True, "data_dir": None, "data_seed": None,
        "potential": cond["potential"], "p": cond["p"], "beta": 1.0, "L": cond["L"],
        "width": 16, "init_scale": 0.1, "loss": "logistic", "lr": 0.05, "epochs": epochs,
        "batch_size": None, "seed": seed, "log_interval": 1, "logreg_C": 1.0,
        "dtype": "float64", "plots": False,
    }


def _write_run(args: tuple[Path, int, int]) -> None:
    """Write one run directory: curves decaying towards a per-condition limit, plus noise."""
    grid_dir, index, epochs = args
    cond_index, seed = index % N_CONDITIONS, index // N_CONDITIONS
    cond = _condition(cond_index)
    name = f"potential=lp,p={cond['p']:g},L={cond['L']},dataset={cond['dataset']},seed={seed}"
    run_dir = grid_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(index)
    t = np.arange(epochs, dtype=np.float64)[:, None]
    limit = 1.0 + 0.1 * cond_index + 0.05 * np.arange(len(METRICS))[None, :]
    rate = 0.005 * (1 + np.arange(len(METRICS)))[None, :]
    values = limit * (1 - 0.9 * np.exp(-rate * t)) + 0.01 * rng.standard_normal(
        (epochs, len(METRICS)))
    values[rng.random(epochs) < 0.01, METRICS.index("grad_norm")] = np.nan  # -> null
    rows = np.column_stack([np.arange(epochs), values]).tolist()
    line = "{" + ", ".join(['"epoch": %d'] + [f'"{m}": %r' for m in METRICS]) + "}\n"
    text = (line * epochs) % tuple(v for row in rows for v in row)
    (run_dir / "metrics.jsonl").write_text(text.replace("nan", "null"), encoding="utf-8")

    config = {"study": "implicit-bias", "config_hash": f"{index:012x}",
              "config": _config(cond, seed, epochs),
              "cli": {"grid": ["sweeplab", "grid", "bench.yaml"]}}
    (run_dir / "config.yaml").write_text(
        yaml.dump(config, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                  sort_keys=False), encoding="utf-8")
    status = {"state": "done", "started": "2026-01-01T00:00:00+00:00",
              "config_hash": f"{index:012x}", "host": "bench", "pid": 1,
              "ended": "2026-01-01T00:00:10+00:00", "duration_s": float(rng.uniform(5, 15))}
    (run_dir / "status.json").write_text(json.dumps(status, indent=2), encoding="utf-8")
    final = {"epoch": epochs, **{m: float(values[-1, j]) for j, m in enumerate(METRICS)},
             "separable": True, "n_train": 256, "warnings": []}
    final = {k: (None if isinstance(v, float) and v != v else v) for k, v in final.items()}
    (run_dir / "final.json").write_text(json.dumps(final, indent=2), encoding="utf-8")


def generate(root: Path, runs: int, epochs: int) -> Path:
    """Write ``runs`` run directories of ``epochs`` epochs under ``root``; the grid dir."""
    grid_dir = root / GRID_NAME
    grid_dir.mkdir(parents=True, exist_ok=True)
    workers = os.cpu_count() or 1
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_run, [(grid_dir, i, epochs) for i in range(runs)],
                      chunksize=max(1, runs // (8 * workers))))
    (root / DONE_MARKER).write_text(json.dumps({"runs": runs, "epochs": epochs}))
    return grid_dir


def timed(label: str, fn):
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    print(f"{label:<38} {elapsed:8.2f} s", flush=True)
    return result, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the generated runs here and reuse them on a later call")
    parser.add_argument("--keep", action="store_true", help="do not delete the temp dir")
    args = parser.parse_args(argv)

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="sweeplab_bench_analysis_"))
    marker = root / DONE_MARKER
    wanted = {"runs": args.runs, "epochs": args.epochs}
    print(f"{args.runs} runs x {args.epochs} epochs x {len(METRICS)} metrics under {root}; "
          f"{os.cpu_count()} cores", flush=True)
    try:
        if marker.exists() and json.loads(marker.read_text()) == wanted:
            print("generation                             reused", flush=True)
            for cache in (root / GRID_NAME).glob("*/metrics.parquet"):
                cache.unlink()
        else:
            if (root / GRID_NAME).exists():
                shutil.rmtree(root / GRID_NAME)
            timed("generation (not part of the figures)", lambda: generate(root, **wanted))
        size = sum(f.stat().st_size for f in (root / GRID_NAME).glob("*/metrics.jsonl"))
        print(f"metrics.jsonl in all                   {size / 2**30:8.2f} GiB")

        loaded, t_runs = timed("load_runs", lambda: load_runs([root]))
        frame, t_cold = timed("load_metrics cold (builds parquet)", lambda: load_metrics(loaded))
        del frame
        warm = []
        for i in range(2):
            frame, t = timed(f"load_metrics warm #{i + 1}", lambda: load_metrics(loaded))
            warm.append(t)
            if i == 0:
                del frame
        t_warm = min(warm)
        print(f"  {len(frame):,} rows x {frame.shape[1]} columns, "
              f"{frame.memory_usage(deep=False).sum() / 2**30:.2f} GiB; "
              f"skipped {len(loaded.skipped)} + {len(loaded.metrics_skipped)}")
        metrics = list(METRICS)
        agg, t_final = timed("aggregate_final", lambda: aggregate_final(
            loaded.runs, CONDITION_KEYS, metrics))
        curves, t_curves = timed("aggregate_curves", lambda: aggregate_curves(
            frame, loaded.runs, CONDITION_KEYS, metrics))
        print(f"  {len(agg)} conditions; curves {curves.shape[0]:,} rows x {curves.shape[1]}")

        total = t_warm + t_final + t_curves
        met = "met" if total < 10 else "NOT met"
        print(f"warm load + aggregate                  {total:8.2f} s  target < 10 s: {met}")
        print(f"  with load_runs                       {total + t_runs:8.2f} s")
        cold_total = t_cold + t_final + t_curves + t_runs
        print(f"cold load + aggregate (+ load_runs)    {cold_total:8.2f} s")
        print(f"cold / warm load_metrics               {t_cold / t_warm:8.1f} x")
    finally:
        if args.data_dir is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
