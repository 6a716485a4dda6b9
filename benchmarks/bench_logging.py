"""Benchmark: what logging metrics costs, local files beside wandb and MLflow, in one invocation.

    .venv/bin/python benchmarks/bench_logging.py [--steps 20000] [--repeat 7]

(a) Raw throughput, 10 scalars per step: sweeplab's ``LocalMetricsWriter``, wandb offline
    (``run.log``), MLflow on SQLite through sweeplab's buffered sink, and the naive
    ``client.log_batch`` per step a user would write. Each tracker runs fewer steps when
    it is slow; figures are per step: the ``log()`` calls alone, and including the close
    (every metric written), with the ratio to the local writer.
(b) Overhead per training step of the implicit-bias study (default config, 1000 epochs,
    ``on_log`` every epoch logging 10 scalars, torch on 1 thread): no sink, the local
    writer, wandb offline, MLflow buffered. Median of ``--repeat`` runs; the overhead is
    the time spent inside ``log()`` as a % of a bare step (measured directly: the loop's
    own time varies more than that on a busy machine), beside the difference of the
    loops' medians, which also counts a background thread's work. Target: under 2% for the
    local writer.

Everything is written under a temporary folder; nothing goes over the network.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

WORK = Path(tempfile.mkdtemp(prefix="sweeplab-bench-logging-"))
os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(WORK / "wandb"),
                  WANDB_CONFIG_DIR=str(WORK / "wandb-config"),
                  WANDB_CACHE_DIR=str(WORK / "wandb-cache"), MLFLOW_DISABLE_TELEMETRY="true")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sweeplab.core.threads import limit_threads  # noqa: E402
from sweeplab.data import load_dataset  # noqa: E402
from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig  # noqa: E402
from sweeplab.studies.implicit_bias.model import DeepLinearNetwork  # noqa: E402
from sweeplab.studies.implicit_bias.potentials import make_potential  # noqa: E402
from sweeplab.studies.implicit_bias.train import train_mirror_descent  # noqa: E402
from sweeplab.track.config import TrackingConfig, prepare_tracking  # noqa: E402
from sweeplab.track.local import LocalMetricsWriter  # noqa: E402
from sweeplab.track.trackers import make_tracker_sinks  # noqa: E402

KEYS = [f"metric_{k}" for k in range(10)]
CONFIG = {"lr": 0.1, "L": 2, "potential": "lp", "p": 1.5}


def row(step: int) -> dict[str, float]:
    """10 scalars for ``step`` (cheap to compute: the benchmark measures logging only)."""
    return {key: step * 1e-3 + k for k, key in enumerate(KEYS)}


class Sink:
    """One sink under test: ``open()`` for a fresh run, then ``log``/``close`` as a run does."""

    def __init__(self, slug: str, name: str, open_fn: Callable[[Path], object]):
        self.slug = slug
        self.name = name
        self.open_fn = open_fn
        self.count = 0

    def open(self):
        self.count += 1
        run_dir = WORK / f"{self.slug}-{self.count}"
        run_dir.mkdir(parents=True)
        return self.open_fn(run_dir)


def tracker_sink(tracking: TrackingConfig, warnings: list[str]) -> Callable[[Path], object]:
    def open_fn(run_dir: Path):
        [sink] = make_tracker_sinks(tracking, run_dir=run_dir, run_name=run_dir.name,
                                    study="bench", config=CONFIG, warn=warnings.append)
        return sink

    return open_fn


class NaiveMlflow:
    """What a user writes by hand: one ``client.log_batch`` per step, synchronous."""

    def __init__(self, uri: str, experiment: str, run_dir: Path):
        from mlflow import MlflowClient

        self.client = MlflowClient(uri)
        experiment_id = self.client.get_experiment_by_name(experiment).experiment_id
        self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id

    def log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, ts, step)
                                                    for k, v in metrics.items()])

    def close(self, state: str = "done") -> None:
        self.client.set_terminated(self.run_id, "FINISHED")


def throughput(sink: Sink, steps: int) -> tuple[float, float, float]:
    """(open s, log us/step, log+close us/step) for ``steps`` steps of 10 scalars."""
    rows = [row(s) for s in range(steps)]
    t0 = time.perf_counter()
    s = sink.open()
    t1 = time.perf_counter()
    for step, metrics in enumerate(rows):
        s.log(step, metrics)
    t2 = time.perf_counter()
    s.close()
    t3 = time.perf_counter()
    return t1 - t0, 1e6 * (t2 - t1) / steps, 1e6 * (t3 - t1) / steps


def training_loop(cfg: ImplicitBiasConfig, X: np.ndarray, y: np.ndarray,
                  sink: Sink | None) -> tuple[float, float, float]:
    """One default implicit-bias run logging 10 scalars per epoch through ``sink``.

    Returns (training loop s, s spent inside ``sink.log`` calls, close s). The time
    inside the calls is measured directly, so it stays readable on a busy machine where
    the loop's own time varies by more than the logging costs.
    """
    pot = make_potential(cfg.potential, p=cfg.p, beta=cfg.beta)
    model = DeepLinearNetwork(X.shape[1], cfg.L, cfg.width, cfg.init_scale,
                              torch.Generator().manual_seed(0))
    s = sink.open() if sink is not None else None
    inside = [0.0]
    clock = time.perf_counter

    def on_log(epoch: int) -> None:
        metrics = row(epoch)
        if s is not None:
            t = clock()
            s.log(epoch, metrics)
            inside[0] += clock() - t

    t0 = clock()
    train_mirror_descent(model, X, y, pot, lr=cfg.lr, epochs=cfg.epochs, log_interval=1,
                         on_log=on_log)
    t1 = clock()
    if s is not None:
        s.close()
    return t1 - t0, inside[0], clock() - t1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000, help="steps for the local writer")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    limit_threads(1)
    np.seterr(all="ignore")

    warnings: list[str] = []
    runs_dir = WORK / "runs"
    tracking = prepare_tracking(
        TrackingConfig(wandb_project="bench", wandb_mode="offline",
                       wandb_dir=str(WORK / "wandb"), mlflow_uri="default"),
        runs_dir, "bench-logging", warnings.append)
    wandb_only = TrackingConfig(wandb_project=tracking.wandb_project, wandb_mode="offline",
                                wandb_dir=tracking.wandb_dir)
    mlflow_only = TrackingConfig(mlflow_uri=tracking.mlflow_uri,
                                 mlflow_experiment=tracking.mlflow_experiment)
    local = Sink("local", "local files (LocalMetricsWriter)", LocalMetricsWriter)
    wandb = Sink("wandb", "wandb offline (run.log)", tracker_sink(wandb_only, warnings))
    mlflow = Sink("mlflow", "mlflow sqlite, sweeplab buffered sink",
                  tracker_sink(mlflow_only, warnings))
    naive = Sink("naive", "mlflow sqlite, log_batch per step",
                 lambda d: NaiveMlflow(tracking.mlflow_uri, tracking.mlflow_experiment, d))

    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"{len(os.sched_getaffinity(0))} cores, work dir {WORK}")
    import mlflow as mlflow_pkg
    import wandb as wandb_pkg

    print(f"wandb {wandb_pkg.__version__}, mlflow {mlflow_pkg.__version__}\n")

    # warm-up: imports, wandb's service process, SQLAlchemy's mappers
    for sink in (local, wandb, mlflow, naive):
        throughput(sink, 20)

    print("(a) raw logging throughput, 10 scalars per step (median of 3)")
    print(f"{'sink':<40}{'steps':>7}{'open s':>8}{'log() us/step':>15}"
          f"{'+close us/step':>16}{'x local':>9}")
    plan = [(local, args.steps), (wandb, max(args.steps // 10, 100)),
            (mlflow, max(args.steps // 4, 100)), (naive, max(args.steps // 50, 50))]
    base = None
    for sink, steps in plan:
        results = [throughput(sink, steps) for _ in range(3)]
        opened, per_log, per_all = (statistics.median(r[i] for r in results) for i in range(3))
        base = base or per_log
        print(f"{sink.name:<40}{steps:>7}{opened:>8.2f}{per_log:>15.1f}{per_all:>16.1f}"
              f"{per_log / base:>8.1f}x")

    cfg = ImplicitBiasConfig()
    data = load_dataset(cfg, seed=0)
    print(f"\n(b) implicit-bias training loop, default config: L={cfg.L}, width={cfg.width}, "
          f"n={len(data.y)}, d={data.X.shape[1]}, {cfg.epochs} epochs, potential={cfg.potential}"
          f", 10 scalars logged every epoch, torch 1 thread, median of {args.repeat}")
    print(f"{'sink':<40}{'loop s':>8}{'us/step':>9}{'in log() us':>13}{'% of step':>11}"
          f"{'loop +%':>9}{'close s':>9}")
    variants: list[tuple[str, Sink | None]] = [("no sink", None), (local.name, local),
                                               (wandb.name, wandb), (mlflow.name, mlflow)]
    training_loop(cfg, data.X, data.y, None)  # warm-up
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in variants}
    for _ in range(args.repeat):  # interleaved, so drift hits every variant alike
        for name, sink in variants:
            times[name].append(training_loop(cfg, data.X, data.y, sink))
    steps = cfg.epochs + 1  # on_log runs at epoch 0 and after every epoch
    bare = statistics.median(t[0] for t in times["no sink"])
    share = {}
    for name, _ in variants:
        loop, inside, close = (statistics.median(t[i] for t in times[name]) for i in range(3))
        share[name] = 100 * inside / bare
        print(f"{name:<40}{loop:>8.3f}{1e6 * loop / cfg.epochs:>9.0f}{1e6 * inside / steps:>13.1f}"
              f"{share[name]:>10.1f}%{100 * (loop - bare) / bare:>8.1f}%{close:>9.2f}")
    print("(% of step: time inside log() over the bare loop; loop +%: difference of the "
          "loops' medians, which also shows work a sink does in a background thread)")
    print(f"\nlocal writer: {share[local.name]:.2f}% of a training step: target < 2% "
          f"{'met' if share[local.name] < 2 else 'NOT met'}")
    if warnings:
        print("warnings: " + "; ".join(warnings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
