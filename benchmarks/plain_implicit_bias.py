"""The plain PyTorch script that ``sweeplab run implicit-bias`` is timed against.

What a researcher would write by hand for the study's default config: two Gaussian
classes (512 training and 512 test points in 2-D, means 3 apart, noise 0.2), a 2-layer
linear network of width 16 (entries ~ N(0, 0.1^2 / fan_in)), full-batch mirror descent
with the lp potential psi(w) = (1/p) sum |w_i|^p, p = 1.5, lr 0.1, on the logistic loss,
1000 epochs in float64 on one thread (as sweeplab's runs); loss and accuracy of every
epoch to ``metrics.csv`` and the final figures to ``final.json``. No baselines, no
figures, no checkpoints: the bare work, so that the benchmark's ratio is the framework's
cost.

    .venv/bin/python benchmarks/plain_implicit_bias.py --out DIR [--epochs 1000]

The mirror step, as in the study (Beck & Teboulle 2003): z <- z - lr grad L(W), then
W = (grad psi)^{-1}(z), with grad psi(w) = sign(w)|w|^(p-1).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def gaussians(n: int, dim: int, separation: float, noise: float, seed: int):
    """Train and test sets of two Gaussian classes along a random unit direction."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(dim)
    u /= np.linalg.norm(u)

    def draw():
        y = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
        return np.outer(y, separation / 2 * u) + noise * rng.standard_normal((n, dim)), y

    return draw(), draw()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--p", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    (X, y), (X_test, y_test) = gaussians(512, 2, 3.0, 0.2, args.seed)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    widths = [2, 16, 1]
    weights = [torch.nn.Parameter(torch.randn(o, i, dtype=torch.float64) * 0.1 / i ** 0.5)
               for i, o in zip(widths[:-1], widths[1:])]
    duals = [w.detach().sign() * w.detach().abs() ** (args.p - 1) for w in weights]

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "metrics.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "train_acc"])
        for epoch in range(args.epochs + 1):
            out = X
            for w in weights:
                out = out @ w.T
            margins = y * out.squeeze(1)
            loss = F.softplus(-margins).mean()
            acc = (margins > 0).double().mean().item()
            writer.writerow([epoch, loss.item(), acc])
            if epoch == args.epochs:
                break
            grads = torch.autograd.grad(loss, weights)
            with torch.no_grad():
                for w, z, g in zip(weights, duals, grads):
                    z.add_(g, alpha=-args.lr)
                    w.copy_(z.sign() * z.abs() ** (1 / (args.p - 1)))

    with torch.no_grad():
        w_end = weights[0].T @ weights[1].T
        test_acc = float(np.mean(np.sign(X_test @ w_end.numpy().ravel()) == y_test))
    final = {"epoch": args.epochs, "loss": loss.item(), "train_acc": acc,
             "test_acc": test_acc, "seconds": time.perf_counter() - start}
    (args.out / "final.json").write_text(json.dumps(final, indent=2))


if __name__ == "__main__":
    main()
