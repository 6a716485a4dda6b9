"""A run's place in batched training, as its checkpoint holds it.

Every run of a batch is checkpointed through its own RunContext, in the same file and
layout as when it trains alone, with the trainer's state under ``state["batched"]``::

    format      STATE_FORMAT
    model       the run's weights, as ``model.state_dict()``
    optimizer   the run's optimizer, as ``torch.optim``'s ``state_dict()`` (loads into
                ``torch.optim.SGD/Adam/AdamW`` over ``model.parameters()``)
    order       the batch-order generator at the start of the current epoch, and the step
    step        optimizer steps taken;  epoch: epochs completed
    epoch_loss  (sum, count) of the current epoch's mini-batch losses so far
    last        the last metrics row logged

So a batch interrupted anywhere resumes, run by run, alone or batched again, to the same
numbers as an uninterrupted batch.
"""

from __future__ import annotations

from typing import Any

from sweeplab.core.checkpoint import CheckpointError

STATE_KEY = "batched"
STATE_FORMAT = 1


def due(ctx: Any, epoch: int, last_epoch: int) -> bool:
    """Whether a run checkpoints at the end of ``epoch``: RunContext's rule.

    Every ``save_interval`` epochs (0: never), and at the last; never at the epoch the
    run resumed from (that checkpoint exists).
    """
    if ctx is None or epoch == ctx.resumed_epoch:
        return False
    interval = ctx.save_interval
    return (interval > 0 and epoch > 0 and epoch % interval == 0) or epoch == last_epoch


def next_due(ctx: Any, epoch: int, last_epoch: int) -> int:
    """The first epoch after ``epoch`` at whose end the run checkpoints (``last_epoch`` at most)."""
    interval = ctx.save_interval if ctx is not None else 0
    if ctx is None or interval <= 0:
        return last_epoch
    return min(last_epoch, (epoch // interval + 1) * interval)


def saved_state(ctx: Any, where: str) -> dict[str, Any] | None:
    """The trainer state a resumed run's checkpoint holds, or ``None`` for a fresh run."""
    if ctx is None or ctx.resumed_epoch is None:
        return None
    state = ctx.restore() or {}
    saved = state.get(STATE_KEY)
    if not isinstance(saved, dict) or saved.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{where}: its checkpoint holds no batched-trainer state of "
                              f"format {STATE_FORMAT}; it cannot resume in a batch")
    return saved
