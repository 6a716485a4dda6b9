"""Speed of a candidate's 3-seed evaluation: seeds together (``--batch auto``) vs one by one
(``--batch off``); it prints figures.

    .venv/bin/python benchmarks/bench_agent_multiseed.py [--repeats 2] [--data-dir data/mnist]

1. Training alone, in this process (:func:`sweeplab.agent.multiseed.train_all`, the code
   the sandbox runs): CPU and wall seconds of the three seeds' training, curves and
   early-stopping checks included, the minimum of ``--repeats``, alternating modes.
2. The whole evaluation as the agent runs it (:func:`~sweeplab.agent.candidate.run_candidate`:
   the training child and the scoring child, each starting an interpreter and torch),
   once per mode: wall seconds under bubblewrap, and CPU seconds of the same evaluation
   under isolation ``none`` (seccomp, limits and the audit hook only), where the child
   is this process's own and its CPU time can be read (bubblewrap's pid-namespace init
   does not pass its child's on).

Ratios are one by one / together (above 1: together is faster). One torch thread, the
agent's default; 5 epochs, batch 64, Adam at 3e-3, patience 5.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from sweeplab.agent import training
from sweeplab.agent.assembler import assemble
from sweeplab.agent.candidate import Sandbox, Task, run_candidate
from sweeplab.agent.datasets import load_dataset
from sweeplab.agent.multiseed import train_all
from sweeplab.agent.sandbox import SandboxLimits, plain_isolation, probe_isolation
from sweeplab.agent.space import TrainSpec, build_candidate
from sweeplab.core.threads import limit_threads
from sweeplab.errors import SweeplabError

MLP = {"family": "mlp", "dropout": 0.0}
CANDIDATES = [
    # name, dataset, space point, also through the sandbox
    ("digits MLP 64-32-10", "digits", {**MLP, "mlp_layers": 1, "mlp_width": 32}, False),
    ("digits CNN 8-16 channels, global pool", "digits",
     {"family": "cnn", "conv_blocks": 2, "channels": 8, "kernel_size": 3, "batchnorm": False,
      "pooling": "global", "hidden": 0, "dropout": 0.0}, False),
    ("MNIST MLP 784-32-10", "mnist", {**MLP, "mlp_layers": 1, "mlp_width": 32}, True),
    ("MNIST MLP 784-128-128-10", "mnist", {**MLP, "mlp_layers": 2, "mlp_width": 128}, True),
]
SEEDS, EPOCHS, PATIENCE, LR = (0, 1, 2), 5, 5, 3e-3


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def in_process(build, data, batch: str) -> tuple[float, float, str]:
    """CPU and wall seconds of the seeds' training; the path's description."""
    tensors = {"x_train": data.x_train, "y_train": data.y_train, "x_val": data.x_val,
               "y_val": data.y_val}
    train = TrainSpec(lr=LR, epochs=EPOCHS).model_dump()
    cpu, wall = time.process_time(), time.monotonic()
    _, path = train_all(training, build, tensors, train, list(SEEDS), PATIENCE,
                        data.num_classes, batch=batch)
    return time.process_time() - cpu, time.monotonic() - wall, path["reason"]


def sandboxed(source: str, task: Task, sandbox: Sandbox, batch: str) -> tuple[float, float]:
    """Wall and children's CPU seconds of one whole evaluation."""
    with tempfile.TemporaryDirectory(prefix="bench-multiseed-") as folder:
        cpu, wall = children_cpu(), time.monotonic()
        outcome = run_candidate(source, task, TrainSpec(lr=LR, epochs=EPOCHS), SEEDS,
                                PATIENCE, Path(folder), sandbox, batch=batch)
        wall, cpu = time.monotonic() - wall, children_cpu() - cpu
    if outcome.evaluation is None:
        raise RuntimeError(f"{batch}: {outcome.status}: {outcome.error}")
    return wall, cpu


def row(label: str, auto: float, off: float) -> str:
    return f"  {label:34s} together {auto:6.2f}  one by one {off:6.2f}  ratio {off / auto:4.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data-dir", default="data/mnist")
    args = parser.parse_args()
    limit_threads(1)
    limits = SandboxLimits(timeout_s=600, cpu_seconds=600)
    kernel, plain = Sandbox(probe_isolation(), limits), Sandbox(plain_isolation(), limits)
    print(f"3 seeds, {EPOCHS} epochs, batch 64; sandbox: {kernel.isolation.kind} (wall), "
          f"{plain.isolation.kind} (CPU)")
    datasets = {}
    for name, dataset, point, through_sandbox in CANDIDATES:
        if dataset not in datasets:
            try:
                datasets[dataset] = load_dataset(
                    dataset, data_dir=args.data_dir if dataset == "mnist" else None, seed=0,
                    max_train=10_000)
            except (OSError, SweeplabError) as exc:
                datasets[dataset] = None
                print(f"\n{dataset} candidates skipped: {exc}")
        data = datasets[dataset]
        if data is None:
            continue
        source = assemble(build_candidate({**point, "lr": LR}, data.input_shape, 10,
                                          EPOCHS).model)
        namespace: dict = {"__name__": "bench_candidate"}
        exec(compile(source, "model.py", "exec"), namespace)  # noqa: S102 - the assembler's
        figures: dict[str, list[tuple[float, float, str]]] = {"auto": [], "off": []}
        for _ in range(args.repeats):
            for batch in ("auto", "off"):
                figures[batch].append(in_process(namespace["build"], data, batch))
        print(f"\n{name} ({len(data.y_train):,} training images): "
              f"{figures['auto'][0][2]}")
        for index, label in ((0, "training CPU s (in process, min)"),
                             (1, "training wall s (in process, min)")):
            print(row(label, min(f[index] for f in figures["auto"]),
                      min(f[index] for f in figures["off"])))
        if not through_sandbox:
            continue
        with Task(data) as task:
            walls = {batch: sandboxed(source, task, kernel, batch)[0] for batch in ("auto", "off")}
            cpus = {batch: sandboxed(source, task, plain, batch)[1] for batch in ("auto", "off")}
        print(row("evaluation wall s (bubblewrap)", walls["auto"], walls["off"]))
        print(row("evaluation CPU s (isolation none)", cpus["auto"], cpus["off"]))


if __name__ == "__main__":
    main()
