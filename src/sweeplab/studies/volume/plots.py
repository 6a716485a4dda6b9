"""Figures of a minima-volume grid, in paper style, as .png and .pdf.

Fan, Sandlund & Ko (2025), "Sharp Minima Can Generalize: A Loss Landscape Perspective
On Data", arXiv 2511.04808, Sec. 4:

- ``plot_log_volume_vs_size``: log-volume of each model (x: its training-set size) in
  each landscape (one line per landscape size), one panel per (condition, loss cutoff);
  the model's own landscape is ringed. A zero volume (log-volume -inf) is no point on a
  line: it is marked by a triangle at the foot of the panel;
- ``plot_loss_curves``: the unperturbed models' cumulative mean loss over the first s
  pool samples, with the loss cutoffs and the landscape size where each curve first
  exceeds each cutoff (from there on the volume is zero);
- ``plot_volume_vs_test``: log-volume on the own landscape against test accuracy and
  test loss, one point per trained model.

The functions draw what they are given (tables of means already taken across seeds, see
:mod:`sweeplab.studies.volume.analysis`) and return the paths they wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.analysis import plotting
from sweeplab.analysis.style import FIG_SIZE, new_figure, save_figure, styled

ZERO_MARKER = "v"
"""Marker at the foot of a panel where a volume is zero (log-volume -inf)."""


def ordered_colours(n: int) -> list[Any]:
    """``n`` colours for ordered values (landscape sizes, m): Okabe-Ito, viridis beyond 7."""
    if n <= len(plotting.CONDITION_COLOURS):
        return list(plotting.CONDITION_COLOURS[:n])
    import matplotlib as mpl

    cmap = mpl.colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)]


def _mark_zero(ax: Any, x: Sequence[float], colour: Any) -> None:
    """Hollow triangles at the foot of ``ax`` above ``x`` (x in data, y in axes units)."""
    if len(x):
        ax.plot(x, np.full(len(x), 0.03), ZERO_MARKER, transform=ax.get_xaxis_transform(),
                markersize=6, markerfacecolor="none", markeredgecolor=colour, clip_on=False,
                linestyle="none")


@styled
def plot_log_volume_vs_size(points: Any, savepath: str | Path) -> list[Path]:
    """Log-volume vs training-set size, a line per landscape size; rows: conditions.

    ``points``: one row per (condition, cutoff, landscape_size, train_size) with
    ``mean`` (mean log-volume across seeds; -inf where any seed's volume is zero),
    ``low``/``high`` (min and max across seeds, NaN where some seed is -inf), ``n_zero``.
    Columns of panels: the cutoffs. Finite means are joined by lines and a min-max band;
    -inf means are triangles at the foot of the panel.
    """
    conditions = list(dict.fromkeys(points["condition"]))
    cutoffs = sorted(set(points["cutoff"]))
    sizes = sorted(set(points["landscape_size"]))
    colours = dict(zip(sizes, ordered_colours(len(sizes))))
    fig, axes = new_figure(len(conditions), len(cutoffs), squeeze=False, sharex=True,
                           figsize=(FIG_SIZE[0] * 0.9 * len(cutoffs),
                                    FIG_SIZE[1] * len(conditions)))
    handles: dict[str, Any] = {}
    train_sizes = sorted(set(points["train_size"]))
    for row, condition in enumerate(conditions):
        for col, cutoff in enumerate(cutoffs):
            ax = axes[row, col]
            panel = points[(points["condition"] == condition) & (points["cutoff"] == cutoff)]
            for size in sizes:
                line = panel[panel["landscape_size"] == size].sort_values("train_size")
                if line.empty:
                    continue
                x = line["train_size"].to_numpy(dtype=float)
                mean = line["mean"].to_numpy(dtype=float)
                finite = np.isfinite(mean)
                colour = colours[size]
                (handle,) = ax.plot(x[finite], mean[finite], "-o", color=colour,
                                    markersize=3.5)
                handles.setdefault(f"{size:g}", handle)
                low = line["low"].to_numpy(dtype=float)
                high = line["high"].to_numpy(dtype=float)
                band = finite & np.isfinite(low) & np.isfinite(high)
                if band.any():
                    ax.fill_between(x, low, high, where=band, color=colour,
                                    alpha=plotting.BAND_ALPHA, linewidth=0)
                own = finite & (x == float(size))
                ax.plot(x[own], mean[own], "o", markersize=8, markerfacecolor="none",
                        markeredgecolor="black", markeredgewidth=0.9)
                _mark_zero(ax, x[~finite], colour)
            if len(train_sizes) <= 10:
                ax.set_xticks(train_sizes, [f"{t:g}" for t in train_sizes])
            if not np.isfinite(panel["mean"].to_numpy(dtype=float)).any():
                ax.text(0.5, 0.5, "zero volume everywhere", transform=ax.transAxes,
                        ha="center", va="center")
            title = f"cutoff {cutoff:g}"
            ax.set_title(title if len(conditions) == 1 else f"{condition}\n{title}")
            if row == len(conditions) - 1:
                ax.set_xlabel("training-set size")
            if col == 0:
                ax.set_ylabel("log-volume")
    if (~np.isfinite(points["mean"].to_numpy(dtype=float))).any():
        (zero,) = axes[0, 0].plot([], [], ZERO_MARKER, markerfacecolor="none",
                                  markeredgecolor="0.3", linestyle="none")
        handles["zero volume (log-volume $-\\infty$)"] = zero
    plotting.place_legend(fig, list(handles.values()), list(handles), title="landscape size")
    fig.tight_layout()
    return save_figure(fig, savepath)


@styled
def plot_loss_curves(curves: Any, markers: Any, cutoffs: Sequence[float],
                     savepath: str | Path) -> list[Path]:
    """Cumulative mean loss over the first s pool samples, a line per model; panel per condition.

    ``curves``: rows (condition, m, train_size, s, loss) with ``loss`` the mean across
    seeds. ``markers``: rows (condition, m, cutoff, cutoff_size) with ``cutoff_size``
    the mean across the seeds whose curve crosses (NaN: none does). Dashed grey lines:
    the cutoffs; dotted verticals in the model's colour: its cutoff sizes; a ring on each
    curve at s = its training-set size (to the left, the samples it was trained on).
    """
    conditions = list(dict.fromkeys(curves["condition"]))
    ms = sorted(set(curves["m"]))
    colours = dict(zip(ms, ordered_colours(len(ms))))
    ncols = min(3, len(conditions))
    nrows = -(-len(conditions) // ncols)
    fig, axes = new_figure(nrows, ncols, squeeze=False,
                           figsize=(FIG_SIZE[0] * ncols, FIG_SIZE[1] * nrows))
    flat = axes.ravel()
    handles: dict[str, Any] = {}
    for ax, condition in zip(flat, conditions):
        rows = curves[curves["condition"] == condition]
        positive = rows["loss"].to_numpy(dtype=float)
        if (positive[np.isfinite(positive)] > 0).all():
            ax.set_yscale("log")
        for m in ms:
            line = rows[rows["m"] == m].sort_values("s")
            if line.empty:
                continue
            s, loss = line["s"].to_numpy(dtype=float), line["loss"].to_numpy(dtype=float)
            train = float(line["train_size"].iloc[0])
            (handle,) = ax.plot(s, loss, color=colours[m])
            handles.setdefault(f"m={m:g} ({train:g} samples)", handle)
            at = s == train
            ax.plot(s[at], loss[at], "o", markersize=5, markerfacecolor="none",
                    markeredgecolor=colours[m])
            mine = markers[(markers["condition"] == condition) & (markers["m"] == m)]
            for size in mine["cutoff_size"].to_numpy(dtype=float):
                if np.isfinite(size):
                    ax.axvline(size, color=colours[m], linestyle=":", linewidth=1.2)
        for cutoff in cutoffs:
            ax.axhline(cutoff, color="0.45", linestyle="--", linewidth=0.9)
            ax.annotate(f"cutoff {cutoff:g}", (1.0, cutoff), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=7, color="0.35")
        ax.set_xlabel("landscape size s (first s pool samples)")
        ax.set_ylabel("cumulative mean loss")
        if len(conditions) > 1:
            ax.set_title(condition)
    for ax in flat[len(conditions):]:
        ax.set_visible(False)
    plotting.place_legend(fig, list(handles.values()), list(handles), title="model")
    fig.tight_layout()
    return save_figure(fig, savepath)


TEST_PANELS = {"test_acc": "test accuracy", "test_loss": "test loss"}


@styled
def plot_volume_vs_test(points: Any, savepath: str | Path,
                        notes: Mapping[str, str] | None = None,
                        xlabel: str = "log-volume (own landscape)") -> list[Path]:
    """Test accuracy and test loss against the log-volume on the model's own landscape.

    ``points``: one row per trained model (run, m): ``condition``, ``m``, ``train_size``,
    ``log_volume`` (finite only), ``test_acc``, ``test_loss``. Colour: m; marker:
    condition (when several).
    ``notes``: metric -> the title of its panel (a rank correlation, say).
    """
    ms = sorted(set(points["m"]))
    colours = dict(zip(ms, ordered_colours(len(ms))))
    conditions = list(dict.fromkeys(points["condition"]))
    shapes = dict(zip(conditions, "osD^v<>pP*X" * 4))
    fig, axes = new_figure(1, len(TEST_PANELS), squeeze=False)
    handles: dict[str, Any] = {}
    for ax, (metric, title) in zip(axes[0], TEST_PANELS.items()):
        for condition in conditions:
            for m in ms:
                sel = points[(points["condition"] == condition) & (points["m"] == m)]
                if sel.empty:
                    continue
                handle = ax.scatter(sel["log_volume"], sel[metric], color=colours[m],
                                    marker=shapes[condition], s=22, zorder=3)
                train = float(sel["train_size"].iloc[0])
                label = f"m={m:g} ({train:g} samples)" + (
                    f", {condition}" if len(conditions) > 1 else "")
                handles.setdefault(label, handle)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(title)
        if notes and metric in notes:
            ax.set_title(notes[metric])
    plotting.place_legend(fig, list(handles.values()), list(handles))
    fig.tight_layout()
    return save_figure(fig, savepath)
