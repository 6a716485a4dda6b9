"""Each run's mini-batch order: the one its loop would draw alone, step by step.

A run on ``n`` samples draws, at epoch e, ``torch.randperm(n, generator=g)`` from its own
generator ``g = torch.Generator().manual_seed(seed)`` (which has drawn epochs 0..e-1)
and cuts it into mini-batches of ``batch_size`` (the last one shorter) -- exactly::

    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for idx in torch.randperm(n, generator=g).split(batch_size):
            ...  # x[samples[idx]]

:class:`RunOrder` hands out any range of a run's steps as a padded table (the short last
mini-batch filled with index 0 and its true size given), so B runs with different
sample counts step together; runs whose epochs end at different steps simply do.
Only the generator state at the start of the current epoch is needed to resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class Batches:
    """Steps ``start .. start + len - 1`` of one run.

    ``index`` (K, batch_size): indices into the shared data (padding: 0); ``size`` (K,):
    real samples per step; ``epoch_end`` (K,): whether the step ends an epoch.
    """

    index: torch.Tensor
    size: torch.Tensor
    epoch_end: torch.Tensor


class RunOrder:
    """The mini-batches of one run (see the module docstring)."""

    def __init__(self, seed: int, n_total: int, batch_size: int,
                 samples: torch.Tensor | None = None):
        self.samples = None if samples is None else samples.detach().to("cpu", torch.long)
        self.n = n_total if samples is None else len(samples)
        self.batch_size = batch_size
        self.steps_per_epoch = math.ceil(self.n / batch_size)
        self._gen = torch.Generator().manual_seed(seed)
        self._states: dict[int, torch.Tensor] = {0: self._gen.get_state()}
        self._table: tuple[int, torch.Tensor] | None = None

    def epoch_of(self, step: int) -> int:
        """The epoch that step ``step`` (0-based) belongs to."""
        return step // self.steps_per_epoch

    def _epoch_table(self, epoch: int) -> torch.Tensor:
        """Epoch ``epoch``'s permutation as global indices, padded to (steps, batch_size)."""
        if self._table is not None and self._table[0] == epoch:
            return self._table[1]
        known = [e for e in self._states if e <= epoch]
        if not known:
            raise ValueError(f"epoch {epoch} precedes this order's resume point")
        e = max(known)
        self._gen.set_state(self._states[e])
        while True:
            perm = torch.randperm(self.n, generator=self._gen)
            self._states[e + 1] = self._gen.get_state()
            if e == epoch:
                break
            e += 1
        index = perm if self.samples is None else self.samples[perm]
        table = torch.zeros(self.steps_per_epoch * self.batch_size, dtype=torch.long)
        table[: self.n] = index
        self._table = (epoch, table.view(self.steps_per_epoch, self.batch_size))
        return self._table[1]

    def batches(self, start: int, count: int) -> Batches:
        """Steps ``start`` to ``start + count - 1`` of this run (global step numbers)."""
        spe, bs = self.steps_per_epoch, self.batch_size
        last_size = self.n - (spe - 1) * bs
        parts = []
        step, end = start, start + count
        while step < end:
            epoch, pos = divmod(step, spe)
            stop = min(end, (epoch + 1) * spe)
            parts.append(self._epoch_table(epoch)[pos: pos + stop - step])
            step = stop
        # forget only the epochs before ``start``: a chunk may end early (a failed run, a
        # stop signal) in any epoch from ``start``'s on, and resume or checkpoint there
        first = self.epoch_of(start)
        self._states = {k: v for k, v in self._states.items() if k >= first}
        steps = torch.arange(start, end)
        pos = steps % spe
        size = torch.where(pos == spe - 1, last_size, bs)
        return Batches(torch.cat(parts), size, pos == spe - 1)

    def state_dict(self, step: int) -> dict[str, object]:
        """What resumes this order at step ``step``: the generator at that epoch's start."""
        epoch = self.epoch_of(step)
        self._epoch_table(epoch)
        return {"step": int(step), "generator": self._states[epoch].clone()}

    def load_state_dict(self, state: dict[str, object]) -> int:
        """Resume from :meth:`state_dict`; returns the step to continue from."""
        step = int(state["step"])  # type: ignore[call-overload]
        generator = torch.as_tensor(state["generator"], dtype=torch.uint8)
        self._states = {self.epoch_of(step): generator.clone()}
        self._table = None
        return step
