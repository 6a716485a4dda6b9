"""Benchmark: training throughput of the anchor studies' models on CPU, and what it implies.

    .venv/bin/python benchmarks/bench_anchor.py [--threads 1] [--seconds 1.5]

Training samples per second (forward, backward, AdamW step, cross-entropy on the last
position) of the models of Chen et al. 2025 (arXiv 2509.17514), 2 layers:

- composite task (8 tokens): the paper's d_model = 32 Mamba (d_state 128, expand 2, d_conv
  4, App. E.1), the same with d_state 32 (the ``_cpu`` configs), the Transformer and the
  Transformer with convolution, at batch 32 (the spec's protocol) and 2048 (the paper's);
- inverse task (29 tokens): Mamba, the residual Mamba and the Transformer at d_model 128
  (App. E.2), batch 32;
- evaluation (forward only, batch 4096), which every protocol runs every 10 epochs over the
  training, test and held-out sets.

From them, the expected wall time of each full protocol on this machine, one run per core
(``--threads`` torch threads each): the spec's phase diagram (90 runs x 300,000 samples x 210
epochs), the paper's recipe (90 x 300,000 x 200 at batch 2048), the ablations (12 runs) and
the inverse task (9 runs x 80,000 x 210). Figures depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

from sweeplab.studies.anchor.models import build_model
from sweeplab.studies.anchor.tasks import (
    COMPOSITE_VOCAB,
    INVERSE_VOCAB,
    SEQ_LEN,
    composite_splits,
    inverse_seq_len,
    inverse_splits,
)

LAYERS = 2
INVERSE_LEN = inverse_seq_len(LAYERS)


def _data(task: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    split = (composite_splits(n, 0, 0, seed=0) if task == "composite"
             else inverse_splits(n, 0, 0, LAYERS, seed=0))["train"].tensors()
    return split["tokens"], split["labels"]


def _model(task: str, model_type: str, d_model: int, d_state: int) -> torch.nn.Module:
    vocab, seq = (COMPOSITE_VOCAB, SEQ_LEN) if task == "composite" else (INVERSE_VOCAB,
                                                                         INVERSE_LEN)
    return build_model(model_type, vocab, seq, LAYERS, d_model, d_state, 2, 4, 1.0, seed=0)


def _timed(step, seconds: float, min_steps: int) -> float:
    """Seconds per call of ``step(i)`` after two warm-up calls, over >= ``seconds``."""
    step(0)
    step(1)
    calls, t0 = 0, time.perf_counter()
    while calls < min_steps or time.perf_counter() - t0 < seconds:
        step(calls)
        calls += 1
    return (time.perf_counter() - t0) / calls


def train_rate(task: str, model_type: str, batch: int, seconds: float, d_model: int = 32,
               d_state: int = 128) -> float:
    """Training samples per second: forward, backward and AdamW step at ``batch``."""
    model = _model(task, model_type, d_model, d_state)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens, labels = _data(task, batch * 4)

    def step(i: int) -> None:
        lo = (i % 4) * batch
        loss = F.cross_entropy(model(tokens[lo:lo + batch]), labels[lo:lo + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / _timed(step, seconds, min_steps=3)


@torch.no_grad()
def eval_rate(task: str, model_type: str, seconds: float, d_model: int = 32,
              d_state: int = 128, batch: int = 4096) -> float:
    """Evaluation samples per second (forward only, eval mode) at ``batch``."""
    model = _model(task, model_type, d_model, d_state).eval()
    tokens, _ = _data(task, batch)
    return batch / _timed(lambda i: model(tokens), seconds, min_steps=2)


def protocol_hours(runs: int, n_train: int, n_eval: int, epochs: int, train_sps: float,
                   eval_sps: float, cores: int, log_interval: int = 10) -> float:
    """Wall hours of ``runs`` runs, ``cores`` at a time: training plus the evaluation
    passes (every ``log_interval`` epochs and at the end, over ``n_eval`` samples)."""
    evals = epochs // log_interval + 1
    per_run = n_train * epochs / train_sps + evals * n_eval / eval_sps
    return math.ceil(runs / cores) * per_run / 3600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--seconds", type=float, default=1.5, help="timed seconds per figure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cores = max(1, len(os.sched_getaffinity(0)) // args.threads)
    print(f"anchor models on CPU: 2 layers, {args.threads} thread(s) per run, {cores} runs at "
          f"a time; torch {torch.__version__}; command: "
          f"{' '.join([os.path.basename(sys.executable), *sys.argv])}")
    s = args.seconds
    print(f"\ncomposite task ({SEQ_LEN} tokens), d_model 32: training samples/s")
    print(f"  {'model':<40}{'batch 32':>12}{'batch 2048':>12}{'eval 4096':>12}")
    rates = {}
    for label, model_type, d_state in (
        ("mamba_standard, d_state 128", "mamba_standard", 128),
        ("mamba_standard, d_state 32 (_cpu)", "mamba_standard", 32),
        ("transformer", "transformer", 128),
        ("transformer_with_conv", "transformer_with_conv", 128),
    ):
        row = (train_rate("composite", model_type, 32, s, d_state=d_state),
               train_rate("composite", model_type, 2048, s, d_state=d_state),
               eval_rate("composite", model_type, s, d_state=d_state))
        rates[label] = row
        print(f"  {label:<40}{row[0]:>12,.0f}{row[1]:>12,.0f}{row[2]:>12,.0f}")
    print(f"\ninverse task ({INVERSE_LEN} tokens), d_model 128 (App. E.2): training samples/s")
    print(f"  {'model':<40}{'batch 32':>12}{'':>12}{'eval 4096':>12}")
    inverse = {}
    for model_type in ("mamba_standard", "mamba_residual", "transformer"):
        row = (train_rate("inverse", model_type, 32, s, d_model=128),
               eval_rate("inverse", model_type, s, d_model=128))
        inverse[model_type] = row
        print(f"  {model_type:<40}{row[0]:>12,.0f}{'':>12}{row[1]:>12,.0f}")

    mamba, trans, tconv = (rates[k] for k in ("mamba_standard, d_state 128", "transformer",
                                              "transformer_with_conv"))
    comp_eval = 300_000 + 10_000 + 10_000  # train + test + held-out, every 10 epochs
    inv_eval = 80_000 + 10_000 + 10_000
    rows = [
        ("phase diagram, spec protocol (90 runs, 210 epochs, batch 32)",
         protocol_hours(90, 300_000, comp_eval, 210, mamba[0], mamba[2], cores)),
        ("phase diagram, paper recipe (90 runs, 200 epochs, batch 2048)",
         protocol_hours(90, 300_000, comp_eval, 200, mamba[1], mamba[2], cores)),
        ("ablations (9 Mamba + 3 Transformer-with-conv runs, batch 32)",
         protocol_hours(9, 300_000, comp_eval, 210, mamba[0], mamba[2], cores)
         + protocol_hours(3, 300_000, comp_eval, 210, tconv[0], tconv[2], cores)),
        ("inverse task (3 x 3 runs, 80,000 samples, 210 epochs, batch 32)",
         sum(protocol_hours(3, 80_000, inv_eval, 210, r[0], r[1], cores)
             for r in inverse.values())),
    ]
    print(f"\nexpected wall time of the full protocols here ({cores} runs at a time, "
          "training and evaluation passes):")
    for label, hours in rows:
        print(f"  {label:<66}{hours:>8,.0f} h = {hours / 24:6,.1f} days")
    alone = protocol_hours(90, 300_000, comp_eval, 210, trans[0], trans[2], cores)
    print(f"  (a Transformer phase diagram, spec protocol: {alone:,.0f} h)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
