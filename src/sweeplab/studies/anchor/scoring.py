"""What an anchor run reports at a logged epoch, for R runs at once.

The metrics of the paper's code (Chen et al. 2025, App. C): ``train_loss`` (cross-entropy
on the whole training set, at the last position) and ``train_acc``, then the task's
accuracies (:data:`.pool.COMPOSITE`, :data:`.pool.INVERSE`). Each run is scored on its own
seed's splits. The models' outputs come from ``outputs(x)``, ``x`` being ``(R, c, T)``
(one chunk of inputs per run) and the result ``(R, c, vocab)`` logits: the batched
trainer's ``EvalBatch.outputs(x, per_run=True)``, or one plain model's
(:func:`plain_outputs`). Chunks hold ``eval_batch_size`` samples in all (per run
``eval_batch_size // R``), so a batch's evaluation takes the memory of one run's.
Sums in float64; accuracies are exact counts over n.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sweeplab.studies.anchor.pool import DataPool, Task

Outputs = Callable[[torch.Tensor], torch.Tensor]


def plain_outputs(model: nn.Module) -> Outputs:
    """``outputs`` of one ordinary model (R = 1)."""
    return lambda x: model(x[0]).unsqueeze(0)


@torch.no_grad()
def scores(task: Task, outputs: Outputs, pool: DataPool, slots: torch.Tensor,
           eval_batch_size: int) -> dict[str, torch.Tensor]:
    """Per metric, R float64 values: run r scored on its seed's splits (``slots[r]``)."""
    runs = len(slots)
    chunk = max(1, eval_batch_size // runs)
    wanted: dict[str, list[tuple[str, str]]] = {"train": [("train_acc", "labels")]}
    for metric, split, field in task.scores:
        wanted.setdefault(split, []).append((metric, field))
    sums: dict[str, torch.Tensor] = {}
    for split, metrics in wanted.items():
        data = pool.tensors[split]
        n = data["tokens"].shape[1]
        totals = {name: 0.0 for name in ["train_loss"] * (split == "train")
                  + [m for m, _ in metrics]}
        for start in range(0, n, chunk):
            x = data["tokens"][:, start:start + chunk].index_select(0, slots)
            logits = outputs(x)
            pred = logits.argmax(-1)
            if split == "train":
                labels = data["labels"][:, start:start + chunk].index_select(0, slots)
                loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(),
                                       reduction="none")
                totals["train_loss"] = totals["train_loss"] + loss.view(runs, -1).double().sum(1)
            for metric, field in metrics:
                labels = data[field][:, start:start + chunk].index_select(0, slots)
                totals[metric] = totals[metric] + (pred == labels).double().sum(1)
        sums |= {name: total / n for name, total in totals.items()}
    order = ["train_loss", "train_acc", *(m for m, _, _ in task.scores)]
    return {name: sums[name] for name in order}
