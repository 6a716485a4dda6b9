"""Figures of any study's aggregated results, in paper style, saved as .png and .pdf.

Three figure kinds, each as a ``draw_*`` function that draws onto given axes (so a study
can compose panels) and a ``plot_*`` function that makes the figure and saves it:

- curves: one line per condition, the mean across seeds with a +-1 std band, from the
  aggregated curves table (``condition``, ``epoch``, ``<m>_mean``, ``<m>_std``);
- heatmaps: one cell per (row key, column key) pair of the aggregated finals table, its
  mean written in the cell; a sequential colour-blind-safe map (cividis), NaN blank;
- boxplots: the distribution across seeds of final metrics in the raw runs table, one
  box per condition with the individual runs drawn over it (a box of 3 seeds alone hides
  how few points it rests on).

Tables are pandas DataFrames; this module uses only their methods, so importing it does
not import pandas. Many conditions stay readable: legends move outside the axes and into
columns, long tick labels are rotated, figures grow with the number of boxes or cells.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.analysis.style import FIG_SIZE, OKABE_ITO, new_figure, save_figure, styled

CONDITION_COLOURS = tuple(c for c in OKABE_ITO if c != "#F0E442")
"""Okabe-Ito without its yellow, which is too faint for thin lines and bands on white."""

LINE_STYLES = ("-", "--", ":", "-.")
"""Cycled once the colours run out, so conditions beyond the 7th stay distinguishable."""

BAND_ALPHA = 0.2
"""Opacity of the +-std bands."""

LEGEND_INSIDE_MAX = 5
"""Up to this many entries a single-panel legend sits inside the axes; beyond, outside."""

LEGEND_ROWS_MAX = 16
"""Entries per legend column outside the axes before another column starts."""


def condition_style(index: int) -> dict[str, str]:
    """Colour and line style of the ``index``-th condition (same in every figure)."""
    n = len(CONDITION_COLOURS)
    return {
        "color": CONDITION_COLOURS[index % n],
        "linestyle": LINE_STYLES[(index // n) % len(LINE_STYLES)],
    }


def ordered_unique(values: Any) -> list[Any]:
    """Distinct values in order of first appearance, or sorted when all are numbers."""
    seen = list(dict.fromkeys(values))
    if seen and all(isinstance(v, (int, float, np.integer, np.floating)) for v in seen):
        return sorted(seen, key=float)
    return seen


def use_log_x(epochs: np.ndarray) -> bool:
    """A log epoch axis when the positive epochs span at least two decades."""
    positive = epochs[epochs >= 1]
    return positive.size >= 2 and positive.max() / positive.min() >= 100


def show_value(value: Any) -> str:
    """A table value as a label: ``2`` not ``2.0``, ``1.5``, strings as they are."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):g}"
    if isinstance(value, (tuple, list)):
        return " vs ".join(map(str, value))
    return str(value)


def _require(table: Any, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{what}: missing column(s) {', '.join(missing)}; "
            f"has {', '.join(map(str, table.columns))}"
        )


def place_legend(target: Any, handles: list[Any], labels: list[str],
                 title: str | None = None, **kwargs: Any) -> Any:
    """A legend that never covers data once there are many entries.

    ``target`` is an Axes (few entries: inside, 'best'; more: outside right, in columns
    of at most :data:`LEGEND_ROWS_MAX`) or a Figure (below the panels, up to 4 columns).
    ``kwargs`` go to ``legend`` (``markerscale``, ...).
    """
    if not handles:
        return None
    n = len(handles)
    if hasattr(target, "add_subplot"):  # a Figure: one legend for all panels, below them
        longest = max(len(label) for label in labels)
        ncol = min(n, 4 if longest <= 24 else 3 if longest <= 36 else 2)
        return target.legend(handles, labels, title=title, loc="upper center",
                             bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False, **kwargs)
    if n <= LEGEND_INSIDE_MAX:
        return target.legend(handles, labels, title=title, loc="best", **kwargs)
    return target.legend(handles, labels, title=title, loc="upper left",
                         bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                         ncol=math.ceil(n / LEGEND_ROWS_MAX), frameon=False, **kwargs)


def rotate_long_labels(ax: Any, labels: Sequence[str], axis: str = "x") -> None:
    """Rotate tick labels 30 degrees (anchored right) when they would collide."""
    if axis == "x" and (max((len(s) for s in labels), default=0) * len(labels) > 40):
        for text in ax.get_xticklabels():
            text.set_rotation(30)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")


# ----------------------------------------------------------------------------- curves


def draw_curves(ax: Any, curves: Any, metric: str, logx: bool | str = "auto",
                conditions: Sequence[Any] | None = None) -> dict[str, Any]:
    """Mean of ``metric`` per condition over epochs, with a +-std band; returns label -> line.

    ``conditions`` fixes the order (and so the colour) of the conditions; by default the
    order in which they first appear. A condition whose mean is NaN throughout (a metric it
    does not have, such as the balance of a one-layer network) draws nothing. A std that is
    NaN (a single seed) draws no band.
    """
    mean_col, std_col = f"{metric}_mean", f"{metric}_std"
    _require(curves, ["condition", "epoch", mean_col], f"curves of {metric!r}")
    order = list(conditions) if conditions is not None else list(
        dict.fromkeys(curves["condition"]))
    epochs_all = curves["epoch"].to_numpy(dtype=float)
    log = use_log_x(epochs_all) if logx == "auto" else bool(logx)
    if log:
        ax.set_xscale("log")
    drawn: dict[str, Any] = {}
    for index, condition in enumerate(order):
        rows = curves[curves["condition"] == condition].sort_values("epoch")
        x = rows["epoch"].to_numpy(dtype=float)
        mean = rows[mean_col].to_numpy(dtype=float)
        std = rows[std_col].to_numpy(dtype=float) if std_col in rows else np.full_like(mean, np.nan)
        keep = np.isfinite(mean) & (x >= 1 if log else np.ones_like(x, dtype=bool))
        if not keep.any():
            continue
        x, mean, std = x[keep], mean[keep], std[keep]
        style = condition_style(index)
        (line,) = ax.plot(x, mean, label=str(condition), **style)
        if np.isfinite(std).any():
            ax.fill_between(x, mean - std, mean + std, where=np.isfinite(std),
                            color=style["color"], alpha=BAND_ALPHA, linewidth=0)
        drawn[str(condition)] = line
    ax.set_xlabel("epoch")
    with contextlib.suppress(AttributeError):  # small values as 1e-4 x, not 0.00012
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useOffset=False)
    return drawn


@styled
def plot_curves(curves: Any, metric: str, savepath: str | Path, ylabel: str,
                title: str | None = None, logx: bool | str = "auto") -> list[Path]:
    """One line per condition (mean across seeds, +-std band) of ``metric`` over epochs.

    ``curves``: the aggregated curves table (``condition``, ``epoch``, ``<metric>_mean``,
    ``<metric>_std``). ``logx``: True, False or "auto" (log when epochs span two decades).
    Writes ``savepath.png`` and ``savepath.pdf``; returns their paths.
    """
    fig, ax = new_figure()
    drawn = draw_curves(ax, curves, metric, logx=logx)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    place_legend(ax, list(drawn.values()), list(drawn), title="mean $\\pm$ std")
    return save_figure(fig, savepath)


# ---------------------------------------------------------------------------- heatmaps


def heatmap_table(finals: Any, row_key: str, col_key: str, metric: str) -> Any:
    """The (row key x column key) table of ``<metric>_mean`` (or ``metric`` itself).

    Rows and columns in :func:`ordered_unique` order; a missing pair is NaN. Raises
    ValueError when a cell would hold several conditions (another group key varies).
    """
    value = metric if metric in finals.columns else f"{metric}_mean"
    _require(finals, [row_key, col_key, value], f"heatmap of {metric!r}")
    keys = finals[[row_key, col_key]].astype(str)
    if keys.duplicated().any():
        raise ValueError(
            f"heatmap of {metric!r}: several conditions share a ({row_key}, {col_key}) cell; "
            f"another group key varies: put it into the row label or filter the table"
        )
    table = finals.pivot(index=row_key, columns=col_key, values=value)
    return table.reindex(index=ordered_unique(finals[row_key]),
                         columns=ordered_unique(finals[col_key])).astype(float)


def colour_range(values: np.ndarray) -> tuple[float, float]:
    """(vmin, vmax) of the finite values, widened when they (nearly) coincide.

    Without widening, values equal to six digits (an alignment of 0.99999 everywhere)
    would span the whole colour map and look as different as 0 and 1.
    """
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    vmin, vmax = float(finite.min()), float(finite.max())
    scale = max(abs(vmin), abs(vmax))
    if vmax - vmin <= 1e-3 * scale or vmax == vmin:
        pad = 0.5 * scale if scale > 0 else 1.0
        return vmin - pad, vmax + pad
    return vmin, vmax


def draw_heatmap(ax: Any, table: Any, fmt: str = "{:.3g}", cmap: str = "cividis",
                 xlabel: str | None = None, ylabel: str | None = None,
                 vmin: float | None = None, vmax: float | None = None) -> Any:
    """Draw ``table`` (rows x columns of numbers) as annotated cells; returns the image.

    NaN cells stay blank (no colour, no text). The text is white on the dark half of the
    colour map and black on the light half, so it stays legible in every cell. The colour
    range is the data's (see :func:`colour_range`) unless ``vmin``/``vmax`` fix it.
    """
    import matplotlib as mpl

    values = table.to_numpy(dtype=float)
    masked = np.ma.masked_invalid(values)
    colours = mpl.colormaps[cmap].with_extremes(bad=(0.0, 0.0, 0.0, 0.0))  # NaN: no colour
    lo, hi = colour_range(values)
    vmin, vmax = lo if vmin is None else vmin, hi if vmax is None else vmax
    image = ax.imshow(masked, cmap=colours, vmin=vmin, vmax=vmax, aspect="auto",
                      interpolation="nearest")
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    nrows, ncols = values.shape
    size = 8 if nrows * ncols <= 30 else 6
    for i in range(nrows):
        for j in range(ncols):
            v = values[i, j]
            if not np.isfinite(v):
                continue
            dark = image.norm(v) < 0.5
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=size,
                    color="white" if dark else "black")
    col_labels = [show_value(c) for c in table.columns]
    ax.set_xticks(range(ncols), col_labels)
    ax.set_yticks(range(nrows), [show_value(r) for r in table.index])
    ax.tick_params(length=0)
    rotate_long_labels(ax, col_labels)
    ax.set_xlabel(xlabel if xlabel is not None else str(table.columns.name or ""))
    ax.set_ylabel(ylabel if ylabel is not None else str(table.index.name or ""))
    return image


def add_colourbar(fig: Any, image: Any, ax: Any, label: str | None = None) -> Any:
    """A colour bar beside ``ax``, its ticks written in full (no offset like 1e-7+0.9999)."""
    bar = fig.colorbar(image, ax=ax, label=label, shrink=0.9)
    formatter = bar.ax.yaxis.get_major_formatter()
    if hasattr(formatter, "set_useOffset"):
        formatter.set_useOffset(False)
    return bar


def heatmap_size(table: Any) -> tuple[float, float]:
    """Figure size (inches) that gives every cell room for its number."""
    nrows, ncols = table.shape
    longest_row = max((len(show_value(r)) for r in table.index), default=4)
    return (max(3.0, 0.85 * ncols + 0.07 * longest_row + 1.6), max(2.2, 0.42 * nrows + 1.1))


@styled
def plot_heatmap(finals: Any, row_key: str, col_key: str, metric: str, savepath: str | Path,
                 title: str, fmt: str = "{:.3g}") -> list[Path]:
    """Heatmap of a final metric's mean over two group keys, each cell annotated.

    ``finals``: the aggregated finals table (one row per condition; ``<metric>_mean``).
    Example: potential setting x depth. Writes ``savepath.png`` and ``.pdf``.
    """
    table = heatmap_table(finals, row_key, col_key, metric)
    fig, ax = new_figure(figsize=heatmap_size(table))
    image = draw_heatmap(ax, table, fmt=fmt)
    add_colourbar(fig, image, ax, label=f"{metric} (mean)")
    ax.set_title(title)
    return save_figure(fig, savepath)


# ---------------------------------------------------------------------------- boxplots


def group_labels(runs: Any, by: str | Sequence[str]) -> list[str]:
    """Each run's condition label: the value of ``by``, or ``k=v, k=v`` for several keys."""
    keys = [by] if isinstance(by, str) else list(by)
    _require(runs, keys, "boxplot groups")
    if len(keys) == 1:
        return [show_value(v) for v in runs[keys[0]]]
    return [", ".join(f"{k}={show_value(v)}" for k, v in zip(keys, row))
            for row in runs[keys].itertuples(index=False)]


def draw_boxplot(ax: Any, values_by_group: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """One box per group (finite values only), the runs jittered over it; returns boxplot().

    Whiskers at 1.5 IQR; no separate outlier markers, since every run is drawn as a dot.
    """
    labels = list(values_by_group)
    data = [np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))]
            for v in values_by_group.values()]
    positions = np.arange(1, len(labels) + 1)
    parts = ax.boxplot(data, positions=positions, widths=0.55, patch_artist=True,
                       showfliers=False, medianprops={"color": "black", "linewidth": 1.2})
    rng = np.random.default_rng(0)  # fixed jitter: the same figure every time
    for index, (box, values) in enumerate(zip(parts["boxes"], data)):
        colour = condition_style(index)["color"]
        box.set_facecolor(colour)
        box.set_alpha(0.3)
        box.set_edgecolor(colour)
        if values.size:
            jitter = rng.uniform(-0.12, 0.12, size=values.size)
            ax.scatter(positions[index] + jitter, values, s=9, color=colour, zorder=3,
                       edgecolors="none", alpha=0.85)
    ax.set_xticks(positions, labels)
    ax.set_xlim(0.4, len(labels) + 0.6)
    rotate_long_labels(ax, labels)
    return parts


@styled
def plot_boxplots(runs: Any, metric_columns: Sequence[str] | Mapping[str, str],
                  by: str | Sequence[str], savepath: str | Path, ylabel: str) -> list[Path]:
    """Distribution across seeds of final metrics, one box per condition, one panel each.

    ``runs``: the raw runs table (one row per run). ``metric_columns``: column names
    (``final.angle_svm``; the ``final.`` prefix may be left out), or a mapping column ->
    panel title. ``by``: the key or keys that define a condition (or ``"condition"``).
    Writes ``savepath.png`` and ``.pdf``; returns their paths.
    """
    titles = (dict(metric_columns) if isinstance(metric_columns, Mapping)
              else {c: c.removeprefix("final.") for c in metric_columns})
    columns = {}
    for column, title in titles.items():
        name = column if column in runs.columns else f"final.{column}"
        _require(runs, [name], "boxplots")
        columns[name] = title
    labels = np.asarray(group_labels(runs, by), dtype=object)
    groups = list(dict.fromkeys(labels))
    n = len(columns)
    ncols = n if n <= 3 else 2 if n == 4 else 3
    nrows = math.ceil(n / ncols)
    width = max(FIG_SIZE[0] * 0.75, 0.42 * len(groups) + 1.2)
    fig, axes = new_figure(nrows, ncols, figsize=(width * ncols, 3.0 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, (column, title) in zip(flat, columns.items()):
        values = runs[column].to_numpy(dtype=float)
        draw_boxplot(ax, {g: values[labels == g] for g in groups})
        ax.set_title(title)
        ax.set_ylabel(ylabel)
    for ax in flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return save_figure(fig, savepath)
