"""The notice of a run that ended where it started on data it could have learned.

A run learned nothing when its training loss after the last epoch is within
``LOSS_TOLERANCE`` (relative) of its value at initialization and its training accuracy
stays below ``chance + ACC_SHARE * (1 - chance)`` (chance: the share of the larger
class), while the logistic-regression baseline on the same data gets above that line: a
linear predictor can learn the data, this run did not. Too few optimizer steps for the
step size do that: the spec's MNIST command (20 full-batch steps of lr 0.02 from a small
initialization) ends at loss ln 2 with the accuracy of its random initialization. The
run then says so in one warning, with what to change; the warning goes to the log and
to ``final.json`` (``RunContext.warn``). Data without a linear signal gets no notice:
more steps would not help there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from sweeplab.core.context import RunContext
from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig
from sweeplab.studies.implicit_bias.metrics import end_to_end
from sweeplab.studies.implicit_bias.model import loss_numpy

LOSS_TOLERANCE = 0.05
"""Largest relative change of the training loss that counts as "where it started"."""

ACC_SHARE = 0.25
"""Accuracy below chance + this share of the way from chance to 1 counts as "near chance"."""

BATCH_EXAMPLE = 64
"""Mini-batch size the notice suggests to a full-batch run on enough samples."""


def chance_accuracy(y: np.ndarray) -> float:
    """Training accuracy of always predicting the larger class."""
    y = np.asarray(y)
    return float(max(np.mean(y > 0), np.mean(y <= 0)))


def accuracy(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """mean_i [y_i <w, x_i> > 0], as the logged ``train_acc`` counts it."""
    return float(np.mean(np.asarray(y) * (np.asarray(X) @ np.asarray(w)) > 0))


def initial_loss(
    X: np.ndarray, y: np.ndarray, init_weights: Sequence[np.ndarray], loss: str
) -> float:
    """Training loss of the network's initial weights (what epoch 0 logs)."""
    margins = np.asarray(y, dtype=np.float64) * (np.asarray(X, dtype=np.float64)
                                                 @ end_to_end(init_weights))
    return loss_numpy(loss, margins)


def stall_notice(
    loss_start: float,
    loss_end: float,
    train_acc: float,
    chance: float,
    reachable_acc: float,
    *,
    epochs: int,
    lr: float,
    batch_size: int | None,
    n_samples: int,
) -> str | None:
    """One line saying that the run learned nothing and what to change, or None.

    ``reachable_acc``: the training accuracy of logistic regression on the same data.
    """
    values = (loss_start, loss_end, train_acc, reachable_acc)
    if not all(math.isfinite(v) for v in values) or loss_start <= 0:
        return None
    learned = chance + ACC_SHARE * (1.0 - chance)
    change = (loss_end - loss_start) / loss_start
    if abs(change) > LOSS_TOLERANCE or train_acc >= learned or reachable_acc < learned:
        return None
    if batch_size is None or batch_size >= n_samples:
        steps = f"{epochs} full-batch steps"
        batches = (f"--batch_size {BATCH_EXAMPLE}" if n_samples >= 4 * BATCH_EXAMPLE
                   else "mini-batches (--batch_size)")
    else:
        steps = f"{epochs * math.ceil(n_samples / batch_size)} steps of batch {batch_size}"
        batches = "a smaller --batch_size"
    return (
        f"the run learned nothing: loss {loss_end:.4g} after {epochs} epochs vs "
        f"{loss_start:.4g} at initialization, train accuracy {train_acc:.3f} (chance "
        f"{chance:.3f}, logistic regression {reachable_acc:.3f}); {steps} at lr {lr:g} "
        f"are too few: try a larger --lr, more --epochs, or {batches}"
    )


def warn_if_stalled(
    ctx: RunContext,
    cfg: ImplicitBiasConfig,
    X: np.ndarray,
    y: np.ndarray,
    init_weights: Sequence[np.ndarray],
    last: Mapping[str, float],
    logreg: np.ndarray | None,
) -> None:
    """Record :func:`stall_notice` as a warning of the run when it applies."""
    if "loss" not in last or "train_acc" not in last or logreg is None:
        return
    notice = stall_notice(
        initial_loss(X, y, init_weights, cfg.loss), float(last["loss"]),
        float(last["train_acc"]), chance_accuracy(y), accuracy(X, y, logreg),
        epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, n_samples=len(y),
    )
    if notice is not None:
        ctx.warn(notice)
