"""Checkpoints of the anchor studies' former single-run loop, continued by the batched one.

Before the studies trained through :mod:`sweeplab.batched` (up to commit ce93501), a run's
checkpoint held ``{"model", "optimizer", "scheduler", "order", "epoch"}``: the weights,
``torch.optim.AdamW``'s state dict, ``LambdaLR``'s, the batch-order generator at the start
of epoch ``epoch``, and ``epoch``, saved at an epoch's start, before that epoch's metrics
row was logged. :func:`as_batched_state` rewrites it as the batched trainer's state
(:mod:`sweeplab.batched.checkpoint`) so that a grid interrupted under the old code
resumes instead of failing: the same weights, optimizer moments and step count (the
schedule is a function of the step), and the same batch order.
"""

from __future__ import annotations

from typing import Any

from sweeplab.batched.checkpoint import STATE_FORMAT, STATE_KEY

LEGACY_KEYS = frozenset({"model", "optimizer", "scheduler", "order", "epoch"})


def is_legacy(state: dict[str, Any] | None) -> bool:
    """Whether a restored study state is the former loop's (and not yet converted)."""
    return isinstance(state, dict) and STATE_KEY not in state and LEGACY_KEYS <= state.keys()


def as_batched_state(state: dict[str, Any], steps_per_epoch: int,
                     last: dict[str, float]) -> dict[str, Any]:
    """The batched trainer's state for a former checkpoint taken at the start of its epoch.

    ``last`` is the metrics row the resumed run logs for that epoch (``{}`` if it logs none).
    """
    epoch = int(state["epoch"])
    step = epoch * steps_per_epoch
    return {"format": STATE_FORMAT, "model": state["model"], "optimizer": state["optimizer"],
            "order": {"step": step, "generator": state["order"]}, "step": step,
            "epoch": epoch, "epoch_loss": [0.0, 0], "last": dict(last)}
