"""The data of a batch of anchor runs: each distinct seed's splits, stacked on the device.

A run's splits are drawn from its own ``cfg.seed`` (:mod:`.tasks`), so runs of different
seeds train and are scored on different samples. A :class:`DataPool` generates each seed's
splits once, stacks them as ``(S, n, T)`` tensors (S distinct seeds, in one batch equal
sizes), and gives each run its seed's ``slot``: its training samples are the slot's rows
of the flattened training tensor (``samples``, drawn in the run's own batch order exactly
as the run alone draws from its own split), and its evaluation inputs are its slot's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sweeplab.batched import TrainData
from sweeplab.studies.anchor.config import AnchorTrainingConfig
from sweeplab.studies.anchor.tasks import (
    COMPOSITE_VOCAB,
    INVERSE_VOCAB,
    SEQ_LEN,
    TaskData,
    composite_splits,
    inverse_seq_len,
    inverse_splits,
)


@dataclass(frozen=True)
class Task:
    """An anchor task as training sees it (Chen et al. 2025, App. C).

    ``splits(cfg)``: the task's splits for ``cfg`` (its seed and sizes); ``scores``: the
    accuracies reported besides the training set's, as (metric, split, labels field).
    """

    vocab: int
    seq_len: Callable[[AnchorTrainingConfig], int]
    splits: Callable[[AnchorTrainingConfig], dict[str, TaskData]]
    scores: tuple[tuple[str, str, str], ...]


COMPOSITE = Task(
    COMPOSITE_VOCAB, lambda cfg: SEQ_LEN,
    lambda cfg: composite_splits(cfg.n_train, cfg.n_test, cfg.n_heldout, cfg.seed),
    (("test_acc", "test", "labels"), ("composite_acc", "heldout", "labels_composite"),
     ("symmetric_acc", "heldout", "labels_symmetric")))
"""App. C.1: test accuracy on the seen pairs; on the held-out pair (4, 3) the share of the
compositional answer (key - 10) and of the symmetric one (key - 6)."""

INVERSE = Task(
    INVERSE_VOCAB, lambda cfg: inverse_seq_len(cfg.n_layers),
    lambda cfg: inverse_splits(cfg.n_train, cfg.n_test, cfg.n_ood, cfg.n_layers, cfg.seed),
    (("test_acc", "test", "labels"), ("ood_acc", "ood", "labels")))
"""App. C.2: accuracy on test sets (in range, held-out congruence) and out of range."""


class DataPool:
    """Every split of every distinct seed of ``cfgs`` (equal sizes), stacked on ``device``.

    ``tensors[split][field]``: ``(S, n, ...)``, slot s holding seed ``seeds[s]``.
    """

    def __init__(self, task: Task, cfgs: Sequence[AnchorTrainingConfig], device: torch.device):
        self.device = device
        self.seeds = sorted({cfg.seed for cfg in cfgs})
        by_seed = {cfg.seed: cfg for cfg in cfgs}
        per_seed = [task.splits(by_seed[seed]) for seed in self.seeds]
        self.tensors: dict[str, dict[str, torch.Tensor]] = {}
        for split in per_seed[0]:
            fields = [splits[split].tensors() for splits in per_seed]
            self.tensors[split] = {name: torch.stack([f[name] for f in fields]).to(device)
                                   for name in ("tokens", *_label_fields(fields[0]))}

    def slot(self, seed: int) -> int:
        """Where seed's splits sit along the first dimension."""
        return self.seeds.index(seed)

    def train_data(self) -> TrainData:
        """The training splits of every seed, one after another (rows ``slot * n + i``)."""
        train = self.tensors["train"]
        return TrainData(train["tokens"].flatten(0, 1), train["labels"].flatten(0, 1))

    def samples(self, seed: int) -> torch.Tensor | None:
        """The rows of :meth:`train_data` that are ``seed``'s split (None: the only seed)."""
        if len(self.seeds) == 1:
            return None
        n = self.tensors["train"]["labels"].shape[1]
        start = self.slot(seed) * n
        return torch.arange(start, start + n)


def _label_fields(fields: dict[str, torch.Tensor]) -> list[str]:
    return [name for name in fields if name.startswith("labels")]
