"""A model's partial training state (``models/m<m>.partial.pt``) in either training path.

A model stopped by a signal keeps its state in ``models/m<m>.partial.pt`` as
``{"key": <train key>, "state": state}``. The one-by-one loop (:func:`.train.train_model`)
stops at epoch boundaries and writes::

    {"model", "optimizer", "generator", "epoch"}   # generator: batch order at the epoch's start

The batched path (:mod:`.batched`) stops at any step and writes the generic trainer's
state (``sweeplab.batched.checkpoint``) under ``"batched"``. Both hold the weights as
``model.state_dict()`` and the optimizer as ``torch.optim``'s ``state_dict()``, so a
model interrupted in one path continues in the other (``--batch`` changed between the
stop and the rerun): always from the one-by-one state, and from the batched state when
it stopped at an epoch boundary (which the one-by-one loop needs); otherwise the model
starts over (training is deterministic, so only time is lost).
"""

from __future__ import annotations

import math
from typing import Any

from sweeplab.batched.checkpoint import STATE_FORMAT, STATE_KEY


def is_batched(state: dict[str, Any]) -> bool:
    """Whether ``state`` was written by the batched path."""
    return STATE_KEY in state


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Mini-batches an epoch of ``n`` samples takes (``batch_size`` 0: full batch)."""
    return math.ceil(n / (batch_size or n))


def to_batched(state: dict[str, Any], spe: int) -> dict[str, Any]:
    """The batched trainer's state equal to ``state`` (either path's), at ``spe`` steps an epoch."""
    if is_batched(state):
        return state
    epoch = int(state["epoch"])
    step = epoch * spe
    return {STATE_KEY: {
        "format": STATE_FORMAT, "model": state["model"], "optimizer": state["optimizer"],
        "order": {"step": step, "generator": state["generator"]},
        "step": step, "epoch": epoch, "epoch_loss": [0.0, 0], "last": {},
    }}


def to_one_by_one(state: dict[str, Any], spe: int) -> dict[str, Any] | None:
    """The one-by-one loop's state equal to ``state``, or None when it stopped mid-epoch."""
    if not is_batched(state):
        return state
    saved = state[STATE_KEY]
    epoch = int(saved["epoch"])
    if int(saved["step"]) != epoch * spe:
        return None
    return {"model": saved["model"], "optimizer": saved["optimizer"],
            "generator": saved["order"]["generator"], "epoch": epoch}


def epoch_of(state: dict[str, Any]) -> int:
    """Epochs completed in ``state`` (either path's)."""
    return int(state[STATE_KEY]["epoch"] if is_batched(state) else state["epoch"])
