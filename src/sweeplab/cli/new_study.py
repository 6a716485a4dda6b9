"""The files of ``sweeplab new study NAME``: a runnable one-file study and its grid spec.

The study is small on purpose (logistic regression by gradient descent on two Gaussian
blobs, standard library only, a second for the whole grid) and shows every piece a study
of one's own has: a typed config, a run function that logs per-step metrics and returns
the final ones, and a spec whose grid has two numeric axes and seeds, so ``sweeplab
analyze`` draws curves with seed bands and a heatmap.
"""

from __future__ import annotations

STUDY_TEMPLATE = '''\
"""{name}: logistic regression by gradient descent on two Gaussian blobs.

A sweeplab study in one file (made by: sweeplab new study {name}). Edit freely, then:

    sweeplab run ./{name}.py:run --lr 0.5 --seed 1     # one run
    sweeplab grid {name}.yaml                          # the grid beside this file
    sweeplab analyze runs_out/<grid directory>         # tables, figures, report
"""

from __future__ import annotations

import math
import random

from pydantic import Field

from sweeplab import RunContext, StudyConfig


class Config(StudyConfig):
    """Every parameter of the study: its flag, its spec key, its check and its help."""

    lr: float = Field(0.5, gt=0, description="learning rate")
    epochs: int = Field(30, ge=1, description="full-batch gradient steps")
    n: int = Field(200, ge=2, description="training points")
    separation: float = Field(2.0, ge=0, description="distance between the class means")
    seed: int = Field(0, description="seed of the data and the initialisation")


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Logistic regression on two Gaussian blobs: loss and accuracy per epoch."""
    rng = random.Random(cfg.seed)
    points = []
    for i in range(cfg.n):
        label = i % 2
        centre = cfg.separation / 2 * (1 if label else -1)
        points.append((rng.gauss(centre, 1.0), rng.gauss(0.0, 1.0), label))
    w1, w2, b = rng.gauss(0, 0.1), rng.gauss(0, 0.1), 0.0
    for epoch in range(cfg.epochs + 1):
        loss = correct = g1 = g2 = gb = 0.0
        for x1, x2, y in points:
            z = w1 * x1 + w2 * x2 + b
            p = 1 / (1 + math.exp(-z))
            loss += math.log1p(math.exp(-abs(z))) + max(z, 0) - y * z  # stable BCE
            correct += (p > 0.5) == (y == 1)
            g1, g2, gb = g1 + (p - y) * x1, g2 + (p - y) * x2, gb + (p - y)
        loss, acc = loss / cfg.n, correct / cfg.n
        ctx.log(epoch, loss=loss, acc=acc)  # -> metrics.jsonl, metrics.csv
        w1, w2, b = (w1 - cfg.lr * g1 / cfg.n, w2 - cfg.lr * g2 / cfg.n,
                     b - cfg.lr * gb / cfg.n)
    return {{"loss": loss, "acc": acc}}  # -> final.json
'''

SPEC_TEMPLATE = '''\
# The grid of the {name} study (made by: sweeplab new study {name}).
#   sweeplab grid {name}.yaml        runs every point in parallel; the same command again
#                                    resumes (finished runs are kept, the others rerun)
#   sweeplab grid {name}.yaml --executor slurm --partition P   one Slurm job array
#   sweeplab analyze runs_out/<timestamp>_{name}              tables, figures, report
study: ./{name}.py:run       # the function run in {name}.py, beside this file
name: {name}
fixed:
  epochs: 30
grid:
  lr: [0.1, 0.5]
  separation: [1.0, 2.0]
  seed: [0, 1, 2]
'''


def study_files(name: str) -> dict[str, str]:
    """File name -> text of a new study called ``name``."""
    return {f"{name}.py": STUDY_TEMPLATE.format(name=name),
            f"{name}.yaml": SPEC_TEMPLATE.format(name=name)}
