"""Figures of the anchor studies across a grid, in paper style, as .png and .pdf.

- ``plot_phase_diagrams``: composite and symmetric accuracy on the held-out anchor pair
  over depth (rows) x initialization rate gamma (columns), each cell the mean across seeds
  (Chen et al. 2025, Fig. 4), beside the composite share and the train accuracy; cells
  whose training did not fit are hatched; one figure per combination of any other varying
  key;
- ``plot_accuracy_bars``: final accuracies per condition (ablations, inverse task), bars
  at the mean, error bars +-1 std across seeds, every seed drawn as a dot, and the chance
  level as a dashed line where there is one (the inverse task's 20%, Chen et al. 2025,
  Fig. 9);
- ``plot_accuracy_curves``: accuracies over epochs, one panel per metric, one colour per
  condition (mean +- std across seeds).

Every function returns the paths it wrote. Tables are the aggregated tables of
``sweeplab analyze`` (``<metric>_mean``/``_std`` columns, ``condition``, ``run_ids``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from sweeplab.analysis import plotting
from sweeplab.analysis.style import FIG_SIZE, new_figure, save_figure, styled

PHASE_METRICS = {"composite_acc": "composite solution", "symmetric_acc": "symmetric solution",
                 "composite_share": "composite / (comp. + sym.)", "train_acc": "train accuracy"}
"""Heatmap panels of the phase diagram (metric -> panel title)."""

BAND_NOTE = "mean $\\pm$ std across seeds"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", text).strip("_")


def phase_groups(finals: Any, other_keys: Sequence[str]) -> list[tuple[str, Any]]:
    """(suffix, rows) per combination of the varying keys besides depth and gamma."""
    varying = [k for k in other_keys if k in finals and finals[k].astype(str).nunique() > 1]
    if not varying:
        return [("", finals)]
    out = []
    for values, rows in finals.groupby(varying, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        tag = ",".join(f"{k}={plotting.show_value(v)}" for k, v in zip(varying, values))
        out.append((tag, rows))
    return out


@styled
def plot_phase_diagrams(
    finals: Any, savepath_prefix: str | Path, other_keys: Sequence[str] = (),
    fit_acc: float | None = None,
) -> list[tuple[Path, str]]:
    """The PHASE_METRICS present over depth x gamma, one panel each, cells annotated.

    Rows: ``n_layers``; columns: ``gamma``; cell: ``<metric>_mean`` (mean across seeds),
    colours on the fixed range [0, 1] so figures of different grids compare. With
    ``fit_acc``, cells whose mean train accuracy is below it are hatched in every panel.
    Returns (path, tag) for every file written; tag names the other keys' values ("" if
    none).
    """
    present = {m: t for m, t in PHASE_METRICS.items() if f"{m}_mean" in finals}
    written: list[tuple[Path, str]] = []
    for tag, rows in phase_groups(finals, other_keys):
        pivots = {m: plotting.heatmap_table(rows, "n_layers", "gamma", m) for m in present}
        if not pivots:
            continue
        unfit = None
        if fit_acc is not None and "train_acc" in pivots:
            unfit = pivots["train_acc"].to_numpy(dtype=float) < fit_acc
        width, height = plotting.heatmap_size(next(iter(pivots.values())))
        ncols = min(len(pivots), 2)
        nrows = -(-len(pivots) // ncols)
        fig, axes = new_figure(nrows, ncols, figsize=(width * ncols, height * nrows),
                               squeeze=False)
        for index, (ax, (metric, table)) in enumerate(zip(axes.ravel(), pivots.items())):
            image = plotting.draw_heatmap(ax, table, fmt="{:.2f}", xlabel=r"$\gamma$",
                                          ylabel="depth (layers)" if index % ncols == 0 else "",
                                          vmin=0.0, vmax=1.0)
            plotting.add_colourbar(fig, image, ax, label="accuracy" if index % ncols else None)
            ax.set_title(present[metric])
            if unfit is not None:
                _hatch(ax, unfit)
        for ax in axes.ravel()[len(pivots):]:
            ax.set_visible(False)
        if tag:
            fig.suptitle(tag.replace(",", ", "))
        fig.tight_layout()
        name = f"{savepath_prefix}_{_slug(tag)}" if tag else str(savepath_prefix)
        written += [(p, tag) for p in save_figure(fig, name)]
    return written


def _hatch(ax: Any, mask: np.ndarray) -> None:
    """Hatch the heatmap cells where ``mask`` is True (rows x columns, as drawn)."""
    from matplotlib.patches import Rectangle

    for i, j in zip(*np.nonzero(mask)):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                               edgecolor="0.5", linewidth=0))


def seed_values(runs: Any, run_ids: Sequence[str], metric: str) -> np.ndarray:
    """The final ``metric`` of each listed run (NaN where a run lacks it)."""
    column = f"final.{metric}"
    if column not in runs or "run_id" not in runs:
        return np.array([])
    rows = runs[runs["run_id"].isin(list(run_ids))]
    return rows[column].to_numpy(dtype=float)


@styled
def plot_accuracy_bars(
    finals: Any, runs: Any, metrics: Mapping[str, str], savepath: str | Path, title: str,
    chance: float | None = None,
) -> list[Path]:
    """Grouped bars: per condition one bar per metric at the mean, +-1 std, seeds as dots;
    ``chance``: a dashed line at the accuracy of guessing uniformly."""
    present = {m: t for m, t in metrics.items() if f"{m}_mean" in finals}
    conditions = [str(c) for c in finals["condition"]]
    n, k = len(conditions), max(len(present), 1)
    width = 0.8 / k
    fig, ax = new_figure(figsize=(max(FIG_SIZE[0], 0.9 * n * k * 0.45 + 1.8), FIG_SIZE[1]))
    x = np.arange(n)
    for j, (metric, label) in enumerate(present.items()):
        colour = plotting.condition_style(j)["color"]
        pos = x - 0.4 + width * (j + 0.5)
        mean = finals[f"{metric}_mean"].to_numpy(dtype=float)
        std = finals[f"{metric}_std"].to_numpy(dtype=float)
        ax.bar(pos, mean, width * 0.9, color=colour, alpha=0.75, label=label,
               yerr=np.where(np.isfinite(std), std, 0.0), capsize=3,
               error_kw={"elinewidth": 1, "ecolor": "0.2"})
        for p, ids in zip(pos, finals["run_ids"]):
            values = seed_values(runs, ids, metric)
            ax.scatter(np.full(values.shape, p), values, s=8, color="black", zorder=3,
                       edgecolors="none")
    if chance is not None:
        ax.axhline(chance, color="0.35", linestyle="--", linewidth=1,
                   label=f"chance ({100 * chance:.0f}%)")
    ax.set_xticks(x, conditions)
    plotting.rotate_long_labels(ax, conditions)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    plotting.place_legend(ax, handles, labels, title="mean $\\pm$ std; dots: seeds")
    fig.tight_layout()
    return save_figure(fig, savepath)


@styled
def plot_accuracy_curves(
    curves: Any, metrics: Mapping[str, str], savepath: str | Path, title: str
) -> list[Path]:
    """One panel per metric present, one colour per condition (mean +- std over epochs)."""
    present = {
        m: t for m, t in metrics.items()
        if f"{m}_mean" in curves.columns and curves[f"{m}_mean"].notna().any()
    }
    if not present:
        return []
    n = len(present)
    nrows, ncols = (2, 2) if n == 4 else (1, n)
    fig, axes = new_figure(nrows, ncols, figsize=(3.6 * ncols, 2.7 * nrows), squeeze=False,
                           sharey=True)
    conditions = list(dict.fromkeys(curves["condition"]))
    lines: dict[str, Any] = {}
    for index, (ax, (metric, panel)) in enumerate(zip(axes.ravel(), present.items())):
        drawn = plotting.draw_curves(ax, curves, metric, conditions=conditions)
        for label, line in drawn.items():
            lines.setdefault(label, line)
        ax.set_title(panel)
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
        if index % ncols == 0:
            ax.set_ylabel("accuracy")
    fig.suptitle(title)
    fig.tight_layout()
    labels = [str(c) for c in conditions if str(c) in lines]
    plotting.place_legend(fig, [lines[c] for c in labels], labels, title=BAND_NOTE)
    return save_figure(fig, savepath)
