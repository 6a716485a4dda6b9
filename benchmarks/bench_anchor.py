"""Benchmark: training throughput of the anchor studies' models on CPU, and what it implies.

    .venv/bin/python benchmarks/bench_anchor.py [--threads 1] [--steps 20]

Training samples per second (forward, backward, AdamW step, cross-entropy on the last
position) of the paper's d_model = 32 Mamba (d_state 128, expand 2, d_conv 4) and of the
Transformer, 2 layers, on composite-task batches of 32 (the spec's protocol) and 2048 (the
paper's recipe). From them, the expected wall time of the full protocols on this machine:
the phase diagram (90 runs x 300,000 samples x 210 epochs), the ablations (12 runs) and
the inverse task (9 runs), with all cores busy (one run per core).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

from sweeplab.studies.anchor.models import build_model
from sweeplab.studies.anchor.tasks import COMPOSITE_VOCAB, SEQ_LEN, composite_splits

EPOCHS, N_TRAIN = 210, 300_000


def samples_per_second(model_type: str, batch: int, steps: int, d_state: int = 128) -> float:
    """Median-free simple rate over ``steps`` training steps after two warm-up steps."""
    model = build_model(model_type, COMPOSITE_VOCAB, SEQ_LEN, 2, 32, d_state, 2, 4, 1.0, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = composite_splits(batch * 4, 1, 1, seed=0)["train"].tensors()
    tokens, labels = data["tokens"], data["labels"]

    def step(i: int) -> None:
        lo = (i % 4) * batch
        loss = F.cross_entropy(model(tokens[lo:lo + batch]), labels[lo:lo + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(2):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * batch / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--steps", type=int, default=20, help="timed steps at batch 32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cores = max(1, len(os.sched_getaffinity(0)) // args.threads)
    print(f"anchor models on CPU: d_model 32, 2 layers, sequence {SEQ_LEN}, {args.threads} "
          f"thread(s) per run, {cores} runs at a time; "
          f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    rates = {}
    print(f"{'model':<34}{'batch 32':>14}{'batch 2048':>14}   samples/s")
    for model_type, d_state in (("mamba_standard", 128), ("mamba_standard", 32),
                                ("transformer", 128)):
        small = samples_per_second(model_type, 32, args.steps, d_state)
        large = samples_per_second(model_type, 2048, max(2, args.steps // 8), d_state)
        label = model_type + (f" (d_state {d_state})" if model_type.startswith("mamba") else "")
        rates[label] = (small, large)
        print(f"{label:<34}{small:>14,.0f}{large:>14,.0f}")
    per_run = N_TRAIN * EPOCHS
    mamba32, mamba2048 = rates["mamba_standard (d_state 128)"]
    trans32, trans2048 = rates["transformer"]
    print(f"\nexpected wall time of the full protocols here ({per_run / 1e6:.0f} M training "
          f"samples per run, evaluation passes not counted):")
    rows = [  # (label, single-core seconds)
        ("phase diagram, spec protocol (90 runs, batch 32)", 90 * per_run / mamba32),
        ("phase diagram, paper recipe (90 runs, batch 2048)", 90 * per_run / mamba2048),
        ("ablations (12 runs, batch 32, at Mamba's rate)", 12 * per_run / mamba32),
        ("inverse task (6 Mamba + 3 Transformer runs, batch 32; sequences "
         "of 29 tokens, not 8: a lower bound)", 6 * per_run / mamba32 + 3 * per_run / trans32),
    ]
    for label, seconds in rows:
        h = seconds / cores / 3600
        print(f"  {label:<62}{h:>9,.0f} h = {h / 24:,.1f} days")
    alone = [90 * per_run / rate / cores / 3600 for rate in (trans32, trans2048)]
    print(f"  (a Transformer phase diagram: {alone[0]:,.0f} h at batch 32, {alone[1]:,.0f} h at "
          f"batch 2048)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
