"""Reading a learning curve (best epoch, overfitting, convergence) and drawing the plots.

A curve is one dict per epoch (1-based ``epoch``, ``train_loss``, ``train_accuracy``,
``val_loss``, ``val_accuracy``). The rules, stated so a reader can check them:

- best epoch: the epoch of least validation loss (the first one on a tie); its weights
  are the ones kept (early stopping, Prechelt 1998, "Early stopping - but when?").
- overfitting: some epoch ``b`` that was the best so far is followed by ``patience``
  epochs that all have a validation loss above ``val_loss[b]`` while their training loss
  stays below ``train_loss[b]``: the model keeps fitting the training set and gets worse
  on held-out data.
- convergence epoch: the first epoch whose validation accuracy is within a relative
  :data:`CONVERGENCE_TOLERANCE` (1%) of the best validation accuracy of the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["CONVERGENCE_TOLERANCE", "best_epoch", "confusion_figure", "convergence_epoch",
           "learning_curve_figure", "overfitting"]

CONVERGENCE_TOLERANCE = 0.01
"""Relative distance to the best validation accuracy that counts as converged."""


def best_epoch(curve: Sequence[dict[str, float]]) -> int:
    """The 1-based epoch of least validation loss (first on a tie)."""
    losses = [row["val_loss"] for row in curve]
    return int(curve[int(np.nanargmin(losses))]["epoch"])


def overfitting(curve: Sequence[dict[str, float]], patience: int) -> bool:
    """Whether validation loss rose for ``patience`` epochs while training loss fell."""
    val = np.array([row["val_loss"] for row in curve], dtype=np.float64)
    train = np.array([row["train_loss"] for row in curve], dtype=np.float64)
    running = np.inf
    for b in range(len(curve) - patience):
        if not val[b] < running:
            continue
        running = val[b]
        after = slice(b + 1, b + 1 + patience)
        if np.all(val[after] > val[b]) and np.all(train[after] < train[b]):
            return True
    return False


def convergence_epoch(curve: Sequence[dict[str, float]],
                      tolerance: float = CONVERGENCE_TOLERANCE) -> int:
    """First 1-based epoch with ``val_accuracy >= (1 - tolerance) * max val_accuracy``."""
    acc = np.array([row["val_accuracy"] for row in curve], dtype=np.float64)
    threshold = (1.0 - tolerance) * np.nanmax(acc)
    return int(curve[int(np.flatnonzero(acc >= threshold)[0])]["epoch"])


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str,
                     path: Path, formats: tuple[str, ...] = ("png",)) -> Path:
    """Draw ``matrix`` (rows true, columns predicted) as ``path`` in each of ``formats``
    (PNG only by default: one per candidate; the report redraws the best model's with a
    PDF twin); return the first file.

    Cells are coloured by the row share (recall per class) and labelled with the counts
    when there are at most 20 classes.
    """
    from sweeplab.analysis.style import paper_style

    with paper_style():
        return _confusion(np.asarray(matrix), class_names, title, path, formats)


def _confusion(matrix: np.ndarray, class_names: Sequence[str], title: str, path: Path,
               formats: tuple[str, ...]) -> Path:
    from sweeplab.analysis.style import new_figure, save_figure

    k = matrix.shape[0]
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    side = max(3.2, 0.45 * k + 1.5)
    fig, ax = new_figure(figsize=(side + 0.8, side))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.grid(False)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=6,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return save_figure(fig, path, formats)[0]


def learning_curve_figure(curves: Sequence[Sequence[dict[str, float]]], seeds: Sequence[int],
                          best: Sequence[int], path: Path,
                          formats: tuple[str, ...] = ("png",)) -> Path:
    """Train (dashed) and validation (solid) loss, and validation accuracy, per seed, as
    ``path`` in each of ``formats``; return the first file.

    One colour per seed; the best epoch (the weights kept) is marked with a circle.
    """
    from sweeplab.analysis.style import paper_style

    with paper_style():
        return _learning(curves, seeds, best, path, formats)


def _learning(curves: Sequence[Sequence[dict[str, float]]], seeds: Sequence[int],
              best: Sequence[int], path: Path, formats: tuple[str, ...]) -> Path:
    from matplotlib.ticker import MaxNLocator

    from sweeplab.analysis.style import new_figure, save_figure

    fig, (loss_ax, acc_ax) = new_figure(1, 2)
    for i, (curve, seed, b) in enumerate(zip(curves, seeds, best)):
        colour = f"C{i % 8}"
        epochs = [row["epoch"] for row in curve]
        val_loss = [row["val_loss"] for row in curve]
        val_acc = [row["val_accuracy"] for row in curve]
        loss_ax.plot(epochs, [row["train_loss"] for row in curve], "--", color=colour,
                     alpha=0.8)
        loss_ax.plot(epochs, val_loss, "-", color=colour, label=f"seed {seed}")
        acc_ax.plot(epochs, val_acc, "-", color=colour, label=f"seed {seed}")
        at = epochs.index(b)
        loss_ax.plot([b], [val_loss[at]], "o", color=colour, markersize=6, fillstyle="none")
        acc_ax.plot([b], [val_acc[at]], "o", color=colour, markersize=6, fillstyle="none")
    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (dashed: train, solid: val)")
    loss_ax.set_title("Loss; o = best epoch (weights kept)")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("validation accuracy")
    acc_ax.set_title("Validation accuracy")
    acc_ax.legend(loc="lower right", fontsize="small")
    return save_figure(fig, path, formats)[0]

