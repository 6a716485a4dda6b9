"""The figures of the default analysis, for any study that declares none of its own.

Given the grid's conditions (its varying parameters, seeds aside; see
:func:`sweeplab.analysis.spec.generic_analysis`):

- one curve figure per logged metric: per condition the mean over seeds at each step,
  with a band of +-1 standard deviation across seeds (``figs/curve_<metric>``);
- one heatmap per pair of numeric varying parameters and final metric: the metric's
  mean in each cell, over seeds and over every other varying parameter
  (``figs/heatmap_<metric>__<row>_x_<column>``).

The per-condition LaTeX tables come from the analysis's table spec, as for any study.
"""

from __future__ import annotations

import itertools
import numbers
from pathlib import Path
from typing import Any

from sweeplab.analysis.aggregate import aggregate_final
from sweeplab.analysis.plotting import draw_curves, place_legend, plot_heatmap
from sweeplab.analysis.spec import AnalysisData
from sweeplab.analysis.style import new_figure, save_figure, styled
from sweeplab.core.experiment import safe_name


def default_figures(data: AnalysisData, figs: Path) -> list[tuple[str, str]]:
    """Draw the curves and heatmaps into ``figs``; ``(png path relative to figs' parent,
    caption)`` of each."""
    drawn: list[tuple[list[Path], str]] = []
    curves = data.curves
    metrics = [c[: -len("_mean")] for c in curves.columns if c.endswith("_mean")] \
        if not curves.empty else []
    for metric in metrics:
        drawn.append((_plot_curve(curves, metric, figs / f"curve_{safe_name(metric)}"),
                      f"{metric} per step: mean over seeds per condition, band +-1 std"))
    axes = numeric_axes(data)
    final_metrics = list(data.finals.attrs.get("metrics", []))
    for row, col in itertools.combinations(axes, 2):
        others = [k for k in axes if k not in (row, col)]
        over = "seeds" + (f" and {', '.join(others)}" if others else "")
        for metric in final_metrics:
            table = aggregate_final(data.runs, [row, col], [metric])
            path = figs / safe_name(f"heatmap_{metric}__{row}_x_{col}")
            drawn.append((plot_heatmap(table, row, col, metric, path,
                                       title=f"{metric} (mean over {over})"),
                          f"Final {metric} over {row} x {col}, mean over {over}"))
    return [(p.relative_to(figs.parent).as_posix(), caption)
            for paths, caption in drawn for p in paths if p.suffix == ".png"]


def numeric_axes(data: AnalysisData) -> list[str]:
    """The varying group keys whose values are all numbers (not booleans)."""
    out = []
    for key in data.group_keys:
        values = set(data.runs[key].dropna())
        if len(values) > 1 and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                   for v in values):
            out.append(key)
    return out


@styled
def _plot_curve(curves: Any, metric: str, savepath: Path) -> list[Path]:
    fig, ax = new_figure()
    drawn = draw_curves(ax, curves, metric)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    place_legend(ax, list(drawn.values()), list(drawn), title="mean $\\pm$ std")
    return save_figure(fig, savepath)
