"""Benchmark: one synthetic implicit-bias run (L = 2, 512 samples, 1000 epochs, metrics
every epoch), compute time after imports, with the phases that make it up.

    .venv/bin/python benchmarks/bench_single_run.py [--repeat 5] [--epochs 1000]

Prints the median wall time of every phase over ``--repeat`` repetitions, the end-to-end
run (every file written, without and with figures), and the same run with torch's default
thread count beside the single thread sweeplab uses, idle and beside a busy process (as in
a grid that keeps every core busy), as ratios. Target: the run
without figures under 1 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

T_START = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402

from sweeplab.core.experiment import make_experiment_dir  # noqa: E402
from sweeplab.core.registry import get_study  # noqa: E402
from sweeplab.core.threads import limit_threads  # noqa: E402
from sweeplab.data import load_dataset  # noqa: E402
from sweeplab.execute.single import execute_run  # noqa: E402
from sweeplab.studies.implicit_bias.baselines import compute_baselines  # noqa: E402
from sweeplab.studies.implicit_bias.metrics import MetricTracker  # noqa: E402
from sweeplab.studies.implicit_bias.model import DeepLinearNetwork  # noqa: E402
from sweeplab.studies.implicit_bias.potentials import make_potential  # noqa: E402
from sweeplab.studies.implicit_bias.runner import linear_md_direction  # noqa: E402
from sweeplab.studies.implicit_bias.train import train_mirror_descent  # noqa: E402
from sweeplab.track.local import LocalMetricsWriter  # noqa: E402

STUDY = get_study("implicit-bias")
IMPORT_S = time.perf_counter() - T_START


def median_time(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` over ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--potential", default="lp")
    args = parser.parse_args()

    default_threads = torch.get_num_threads()
    limit_threads(1)
    cfg = STUDY.config.from_mapping(
        {"potential": args.potential, "p": 1.5, "L": 2, "n_samples": 512, "input_dim": 2,
         "epochs": args.epochs, "log_interval": 1, "plots": False}
    )
    data = load_dataset(cfg, seed=cfg.seed)
    X, y = data.X, data.y
    pot = make_potential(cfg.potential, p=cfg.p, beta=cfg.beta)
    base = compute_baselines(X, y, p=pot.margin_p, seed=0)
    dirs = {"svm": base.svm, "logreg": base.logreg, "lp_max_margin": base.lp_max_margin,
            "linear_md": linear_md_direction(X, y, pot, cfg)}

    def deep(on_log=None):
        model = DeepLinearNetwork(2, cfg.L, cfg.width, cfg.init_scale,
                                  torch.Generator().manual_seed(0))
        train_mirror_descent(model, X, y, pot, lr=cfg.lr, epochs=cfg.epochs, on_log=on_log)
        return model

    def with_metrics(write: bool):
        model = DeepLinearNetwork(2, cfg.L, cfg.width, cfg.init_scale,
                                  torch.Generator().manual_seed(0))
        tracker = MetricTracker(X, y, pot, cfg.loss, dirs, model.weights_numpy())
        writer = LocalMetricsWriter(tempfile.mkdtemp(prefix="sweeplab-bench-")) if write else None

        def on_log(epoch: int) -> None:
            row = tracker(model.weights_numpy())
            if writer is not None:
                writer.log(epoch, row)

        train_mirror_descent(model, X, y, pot, lr=cfg.lr, epochs=cfg.epochs, on_log=on_log)
        if writer is not None:
            writer.close()

    out = Path(tempfile.mkdtemp(prefix="sweeplab-bench-"))

    def full_run(c=cfg):
        return execute_run(STUDY, c, make_experiment_dir(out))

    phases = {
        "data (synthetic, standardize)": lambda: load_dataset(cfg, seed=cfg.seed),
        "baselines (separability, SVM, lp, logreg)": lambda: compute_baselines(
            X, y, p=pot.margin_p, seed=0),
        f"linear MD baseline ({cfg.epochs} epochs)": lambda: linear_md_direction(X, y, pot, cfg),
        f"deep MD training alone ({cfg.epochs} epochs)": deep,
        f"  + metrics every epoch ({cfg.epochs + 1} evaluations)": lambda: with_metrics(False),
        "  + metrics.jsonl / metrics.csv lines": lambda: with_metrics(True),
    }
    print(f"sweeplab single-run benchmark: L={cfg.L}, n={len(y)}, d=2, {cfg.epochs} epochs, "
          f"potential={cfg.potential}, metrics every epoch, float64, 1 thread")
    print(f"imports (torch, numpy, scipy, cvxpy, sklearn, sweeplab): {IMPORT_S:.2f} s\n")
    print(f"{'phase':<52}{'median s':>10}")
    times = {name: median_time(fn, args.repeat) for name, fn in phases.items()}
    names = list(times)
    # the three training lines are cumulative: report each increment's own share
    own = dict(times)
    own[names[4]] = times[names[4]] - times[names[3]]
    own[names[5]] = times[names[5]] - times[names[4]]
    total_phases = sum(own.values())
    for name in names:
        print(f"{name:<52}{times[name]:>10.3f}   own {own[name]:6.3f} s "
              f"{100 * own[name] / total_phases:5.1f}%")
    print(f"{'sum of phases':<52}{total_phases:>10.3f}")

    t_run = median_time(full_run, args.repeat)
    cfg_plots = cfg.model_copy(update={"plots": True})
    t_plots = median_time(lambda: full_run(cfg_plots), max(1, args.repeat // 2))
    print(f"\n{'end-to-end run, every file, no figures':<52}{t_run:>10.3f}"
          f"   target < 1 s: {'met' if t_run < 1.0 else 'NOT met'}")
    print(f"{'end-to-end run with figures (5 x png + pdf)':<52}{t_plots:>10.3f}")

    limit_threads(default_threads)
    t_threads = median_time(full_run, max(1, args.repeat // 2))
    limit_threads(1)
    print(f"{f'same run, torch default threads ({default_threads})':<52}{t_threads:>10.3f}"
          f"   ratio {t_threads / t_run:.2f}x")
    # A grid keeps every core busy: measure both settings beside one busy process.
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t_loaded_1 = median_time(full_run, max(1, args.repeat // 2))
        limit_threads(default_threads)
        t_loaded_n = median_time(full_run, max(1, args.repeat // 2))
        limit_threads(1)
    finally:
        burner.kill()
    print(f"{'beside a busy process: 1 thread':<52}{t_loaded_1:>10.3f}")
    print(f"{f'beside a busy process: {default_threads} threads':<52}{t_loaded_n:>10.3f}"
          f"   ratio {t_loaded_n / t_loaded_1:.2f}x")
    per_step = 1e6 * times[names[3]] / cfg.epochs
    per_metric = 1e6 * own[names[4]] / (cfg.epochs + 1)
    per_line = 1e6 * own[names[5]] / (cfg.epochs + 1)
    print(f"\nper deep MD step: {per_step:.0f} us; per metric evaluation: {per_metric:.0f} us; "
          f"per metric line written: {per_line:.0f} us; dominant: "
          f"{max(own, key=own.get).strip()}")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
