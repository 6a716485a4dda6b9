"""Figures of the implicit-bias study, in paper style, as .png and .pdf.

Over epochs, ``plot_angles_over_time``, ``plot_margins_over_time``, ``plot_norm_balance``
and ``plot_alignment`` take ``results`` in either of two forms:

- one run: the rows of its ``metrics.jsonl`` (a list of dicts), or a mapping (or
  DataFrame) of column name -> values; one line per quantity;
- many runs: the aggregated curves table of ``sweeplab analyze`` (a DataFrame with a
  ``condition`` column and ``<metric>_mean`` / ``<metric>_std`` columns); one colour per
  condition, the mean across seeds with a +-std band.

Across a grid, ``plot_heatmaps`` (norm balance and alignment over potential setting x
depth), ``plot_final_boxplots`` (final angles and margins across seeds) and
``plot_decision_boundaries`` (2-D runs from their saved data and directions). Every
function writes ``<savepath>.png`` and ``<savepath>.pdf`` and returns the paths.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.analysis import plotting
from sweeplab.analysis.style import FIG_SIZE, new_figure, save_figure, styled

BASELINE_LABELS = {
    "svm": r"$\ell_2$ SVM",
    "logreg": "logistic regression",
    "lp_max_margin": r"$\ell_p$ max-margin",
    "linear_md": "linear MD (L = 1)",
}
"""Display names of the baseline directions."""

BASELINE_STYLES = {
    "svm": ("#009E73", "--"),
    "logreg": ("#CC79A7", "-."),
    "lp_max_margin": ("#E69F00", ":"),
    "linear_md": ("#0072B2", "--"),
}
"""Colour and line style of each baseline's decision line (the same in every panel)."""

COINCIDE_SHARE = 0.01
"""Angle curves closer than this share of the y axis everywhere draw as one line."""

COINCIDE_LINE_DEG = 0.5
"""Decision lines closer than this angle (degrees) draw as one line."""

EQUAL_TOL = 1e-6
"""A gap at most this small (degrees) is an equality, marked "=" rather than "≈"."""

Results = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[float]]

BAND_NOTE = "mean $\\pm$ std across seeds"


def is_aggregated(results: Any) -> bool:
    """True for an aggregated curves table (a DataFrame with a ``condition`` column)."""
    return hasattr(results, "columns") and "condition" in results.columns


def columns(results: Results) -> dict[str, np.ndarray]:
    """Metric rows or a column mapping -> dict of float arrays (missing values NaN)."""
    if hasattr(results, "columns") and hasattr(results, "to_numpy"):  # one run's DataFrame
        return {str(k): results[k].to_numpy(dtype=float) for k in results.columns}
    if isinstance(results, Mapping):
        return {k: np.asarray(v, dtype=float) for k, v in results.items()}
    keys: list[str] = []
    for row in results:
        keys.extend(k for k in row if k not in keys)
    return {
        k: np.array(
            [np.nan if r.get(k) is None else r.get(k, np.nan) for r in results], dtype=float
        )
        for k in keys
    }


def _epochs(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    return cols.get("epoch", np.arange(len(next(iter(cols.values())))))


def _log_x(ax: Any, epochs: np.ndarray) -> np.ndarray:
    """Use a log epoch axis when training spans decades; returns the mask of points drawn."""
    mask = epochs >= 1
    if mask.sum() >= 2 and epochs[mask].max() / epochs[mask].min() >= 100:
        ax.set_xscale("log")
        return mask
    return np.ones_like(epochs, dtype=bool)


@styled
def plot_angles_over_time(results: Results, savepath: str | Path) -> list[Path]:
    """Angle (degrees) between the end-to-end predictor and each baseline, per epoch.

    One run: one line per baseline, in the colours of the decision-boundary figure, the
    legend outside the axes; a curve that lies on an earlier one (within
    :data:`COINCIDE_SHARE` of the y axis throughout, e.g. the lp max-margin on the SVM in
    2-D) is dashed and labelled "(= SVM)". Aggregated curves: one panel per baseline (l2 SVM,
    logistic regression, lp max-margin, linear MD), one colour per condition, on a shared
    y axis, so which baseline the deep predictor approaches reads at a glance.
    """
    if is_aggregated(results):
        return _across_seeds(
            results, savepath,
            {f"angle_{name}": f"vs {label}" for name, label in BASELINE_LABELS.items()},
            ylabel="angle (degrees)", title="Angle between the deep predictor and baselines",
            sharey=True, ylim=(0, None),
        )
    cols = columns(results)
    epochs = _epochs(cols)
    fig, ax = new_figure()
    mask = _log_x(ax, epochs)
    curves = {name: cols[f"angle_{name}"][mask] for name in BASELINE_LABELS
              if f"angle_{name}" in cols}
    top = max((np.nanmax(c) for c in curves.values() if np.isfinite(c).any()), default=0.0)
    same = coinciding(list(curves), lambda a, b: _max_gap(curves[a], curves[b]),
                      COINCIDE_SHARE * top)
    for name, curve in curves.items():
        colour, _ = BASELINE_STYLES[name]
        ax.plot(epochs[mask], curve, color=colour, label=marked_label(name, same),
                linestyle="--" if name in same else "-")  # the line beneath shows through
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to baseline (degrees)")
    ax.set_ylim(bottom=0)
    ax.set_title("Direction of the end-to-end predictor")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False)  # outside the axes: it never covers a curve
    return save_figure(fig, savepath)


def coinciding(
    names: Sequence[str], gap: Callable[[str, str], float], tol: float
) -> dict[str, tuple[str, float]]:
    """name -> (an earlier name it coincides with, their gap), for names drawn as one line.

    ``gap(a, b)`` is how far apart two lines are (NaN: not comparable); a name coincides
    with the first earlier name, itself not coinciding with another, within ``tol``.
    """
    same: dict[str, tuple[str, float]] = {}
    for i, name in enumerate(names):
        for other in names[:i]:
            if other in same:
                continue
            distance = gap(name, other)
            if math.isfinite(distance) and distance <= tol:
                same[name] = (other, distance)
                break
    return same


def marked_label(name: str, same: Mapping[str, tuple[str, float]]) -> str:
    """The display name, with "(= other)" or "(≈ other)" when its line hides another."""
    label = BASELINE_LABELS.get(name, name)
    if name not in same:
        return label
    other, distance = same[name]
    sign = "=" if distance <= EQUAL_TOL else "≈"
    return f"{label} ({sign} {BASELINE_LABELS.get(other, other)})"


def _max_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| where both are finite (NaN when they never are)."""
    both = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[both] - b[both]))) if both.any() else float("nan")


def _line_gap(u: np.ndarray, v: np.ndarray) -> float:
    """Angle (degrees) between the lines {x : <u, x> = 0} and {x : <v, x> = 0}."""
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return float("nan")
    cos = abs(float(np.dot(u, v))) / (nu * nv)
    return math.degrees(math.acos(min(1.0, cos)))


@styled
def plot_margins_over_time(
    results: Results, savepath: str | Path, p: float | None = None
) -> list[Path]:
    """Normalized margins gamma_2 and gamma_p per epoch, with the optimal margins dashed.

    Aggregated curves: the ratios gamma_2/gamma_2* and gamma_p/gamma_p* (the optimum
    depends on p, so only ratios compare across conditions; 1 = max-margin), one panel
    each; ``p`` is not used there (each condition has its own).
    """
    if is_aggregated(results):
        ratios = {"margin_l2_ratio": r"$\ell_2$ margin $\gamma_2 / \gamma_2^*$",
                  "margin_p_ratio": r"$\ell_p$ margin $\gamma_p / \gamma_p^*$"}
        if any(f"{m}_mean" in results.columns for m in ratios):
            return _across_seeds(results, savepath, ratios, ylabel="margin / optimal margin",
                                 title="Margins of the deep predictor", reference=1.0)
        return _across_seeds(
            results, savepath,
            {"margin_l2": r"$\ell_2$ margin $\gamma_2$", "margin_p": r"$\ell_p$ margin $\gamma_p$"},
            ylabel="normalized margin", title="Margins of the deep predictor",
        )
    cols = columns(results)
    epochs = _epochs(cols)
    fig, ax = new_figure()
    mask = _log_x(ax, epochs)
    p_label = f"p={p:g}" if p is not None else "p"
    series = [
        ("margin_l2", r"$\gamma_2$", "margin_l2_ratio"),
        ("margin_p", rf"$\gamma_{{{p_label}}}$", "margin_p_ratio"),
    ]
    for key, label, ratio_key in series:
        if key not in cols:
            continue
        (line,) = ax.plot(epochs[mask], cols[key][mask], label=label)
        if ratio_key in cols and np.isfinite(cols[ratio_key][-1]) and cols[ratio_key][-1] != 0:
            optimum = cols[key][-1] / cols[ratio_key][-1]
            ax.axhline(
                optimum,
                color=line.get_color(),
                linestyle="--",
                linewidth=1,
                label=f"{label} optimum",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("normalized margin")
    ax.set_title("Margins of the end-to-end predictor")
    ax.legend()
    return save_figure(fig, savepath)


@styled
def plot_norm_balance(results: Results, savepath: str | Path) -> list[Path]:
    """Drift of the layer balances from initialization and the layer norms, per epoch.

    Aggregated curves: the largest drift max_k |N(W_k) - N(W_k+1) - its initial value|
    (``balance_drift_max``) per condition; one-layer conditions have no balance and are
    left out.
    """
    if is_aggregated(results):
        return _across_seeds(
            results, savepath, {"balance_drift_max": "Norm balance"},
            ylabel=r"max$_k$ |drift of $N(W_k) - N(W_{k+1})$|", title="Norm balance",
            empty="L = 1 only: no balance",
        )
    cols = columns(results)
    epochs = _epochs(cols)
    fig, (ax_bal, ax_norm) = new_figure(1, 2)
    drift_keys = sorted(k for k in cols if k.startswith("balance_drift_") and k[-1].isdigit())
    for key in drift_keys:
        k = key.rsplit("_", 1)[1]
        ax_bal.plot(epochs, cols[key], label=rf"$N(W_{k}) - N(W_{int(k) + 1})$")
    ax_bal.set_xlabel("epoch")
    ax_bal.set_ylabel("drift from initialization")
    ax_bal.set_title("Norm balance")
    if drift_keys:
        ax_bal.legend()
    else:
        ax_bal.text(
            0.5, 0.5, "L = 1: no balance", ha="center", va="center", transform=ax_bal.transAxes
        )
    for key in sorted(k for k in cols if k.startswith("norm_")):
        ax_norm.plot(epochs, cols[key], label=rf"$\|W_{key.split('_')[1]}\|_F$")
    ax_norm.set_xlabel("epoch")
    ax_norm.set_ylabel("Frobenius norm")
    ax_norm.set_title("Layer norms")
    ax_norm.legend()
    return save_figure(fig, savepath)


@styled
def plot_alignment(results: Results, savepath: str | Path) -> list[Path]:
    """Adjacent-layer alignment |u_k^T v_{k+1}| and rank-one ratios, per epoch.

    Aggregated curves: the smallest alignment and rank-one ratio over layers
    (``align_min``, ``rank1_min``) per condition, one panel each.
    """
    if is_aggregated(results):
        return _across_seeds(
            results, savepath,
            {"align_min": r"alignment min$_k\, |u_k^\top v_{k+1}|$",
             "rank1_min": r"rank one min$_k\, \sigma_1 / \|W_k\|_F$"},
            ylabel="alignment", title="Layer alignment", ylim=(0, 1.05),
            empty="L = 1 only: no alignment",
        )
    cols = columns(results)
    epochs = _epochs(cols)
    fig, ax = new_figure()
    for key in sorted(k for k in cols if k.startswith("align_") and k[-1].isdigit()):
        k = int(key.split("_")[1])
        ax.plot(epochs, cols[key], label=rf"$|u_{k}^\top v_{k + 1}|$")
    for key in sorted(k for k in cols if k.startswith("rank1_") and k[-1].isdigit()):
        k = key.split("_")[1]
        ax.plot(epochs, cols[key], linestyle=":", label=rf"$\sigma_1/\|W_{k}\|_F$")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("epoch")
    ax.set_ylabel("alignment")
    ax.set_title("Layer alignment")
    ax.legend()
    return save_figure(fig, savepath)


@styled
def plot_decision_boundary(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    savepath: str | Path,
    directions: Mapping[str, Sequence[float] | None] | None = None,
) -> list[Path]:
    """2-D data, the model's decision regions, and each baseline's decision line.

    ``model`` is a :class:`DeepLinearNetwork` or an end-to-end weight vector of length 2.
    Every classifier here passes through the origin, so a direction w draws the line
    {x : <w, x> = 0}. Lines drawn on one another are marked in the legend, which sits
    outside the axes so that it covers neither data nor lines.
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] != 2:
        raise ValueError(f"decision boundaries need 2-D inputs, got dimension {X.shape[1]}")
    fig, ax = new_figure(figsize=(4.2, 4.0))
    _draw_boundaries(ax, _as_vector(model), X, y, directions, mark_coinciding=True)
    ax.set_title("Decision boundaries")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False, fontsize=7)  # outside the axes: it never covers a line
    return save_figure(fig, savepath)


@styled
def plot_decision_boundaries(
    run_dirs: Iterable[str | Path], savepath: str | Path, max_runs: int = 6
) -> list[Path]:
    """Small multiples of 2-D runs: data, the deep predictor's regions, every baseline.

    Each run directory holds ``dataset.npz`` (X, y) and ``directions.json``
    (``end_to_end``, ``svm``, ``logreg``, ``lp_max_margin``, ``linear_md``; null where a
    baseline is unavailable). Runs that are not 2-D or lack these files are passed over.
    At most ``max_runs`` are drawn, three per row, with one legend for all: the first run
    of each condition (its directory name without the seed) before any second seed, so a
    grid shows its conditions rather than one condition's seeds. Returns [] and writes
    nothing when no run can be drawn.
    """
    runs = []
    for run_dir in spread_over_conditions([Path(d) for d in run_dirs]):
        if len(runs) >= max_runs:
            break
        loaded = load_run_geometry(run_dir)
        if loaded is not None:
            runs.append((run_dir, *loaded))
    if not runs:
        return []
    ncols = min(3, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(2.9 * ncols, 2.9 * nrows), squeeze=False)
    legend: dict[str, Any] = {}
    for ax, (run_dir, X, y, directions) in zip(axes.ravel(), runs):
        _draw_boundaries(ax, np.asarray(directions["end_to_end"], dtype=float), X, y,
                         directions, marker_size=4)
        ax.set_title(run_dir.name.replace(",", ", "), fontsize=8)
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    for ax in axes.ravel()[len(runs):]:
        ax.set_visible(False)
    fig.tight_layout()
    plotting.place_legend(fig, list(legend.values()), list(legend), markerscale=2)
    return save_figure(fig, savepath)


def spread_over_conditions(run_dirs: Sequence[Path]) -> list[Path]:
    """Run directories reordered round-robin over conditions (names less ``seed=...``)."""
    by_condition: dict[str, list[Path]] = {}
    for run_dir in run_dirs:
        parts = run_dir.name.split(",")
        key = ",".join(p for p in parts if not p.startswith(("seed=", "data_seed=")))
        by_condition.setdefault(key, []).append(run_dir)
    queues = list(by_condition.values())
    depth = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(depth) for q in queues if i < len(q)]


def load_run_geometry(
    run_dir: str | Path,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
    """(X, y, directions) of a 2-D run from its saved files, or None if it has none."""
    run_dir = Path(run_dir)
    data_path, directions_path = run_dir / "dataset.npz", run_dir / "directions.json"
    if not (data_path.is_file() and directions_path.is_file()):
        return None
    directions = json.loads(directions_path.read_text())
    if directions.get("end_to_end") is None or len(directions["end_to_end"]) != 2:
        return None
    with np.load(data_path) as data:
        X, y = np.asarray(data["X"], dtype=float), np.asarray(data["y"])
    if X.ndim != 2 or X.shape[1] != 2:
        return None
    return X, y, directions


def _draw_boundaries(
    ax: Any,
    w: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    directions: Mapping[str, Any] | None,
    marker_size: float = 8,
    mark_coinciding: bool = False,
) -> None:
    """Decision regions of w, the two classes, w's line and each baseline's line.

    ``mark_coinciding``: a baseline whose line lies on the deep network's or an earlier
    baseline's (within :data:`COINCIDE_LINE_DEG`) is labelled "(= that one)".
    """
    lim = 1.1 * np.abs(X).max()
    grid = np.linspace(-lim, lim, 300)
    gx, gy = np.meshgrid(grid, grid)
    scores = w[0] * gx + w[1] * gy
    ax.contourf(
        gx, gy, np.sign(scores), levels=[-2, 0, 2], colors=["#56B4E9", "#E69F00"], alpha=0.15
    )
    for label, colour, marker in ((-1, "#0072B2", "o"), (1, "#D55E00", "s")):
        pts = X[np.asarray(y) == label]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=marker_size,
            c=colour,
            marker=marker,
            label=f"y = {label:+d}",
            edgecolors="none",
            alpha=0.8,
        )
    _draw_line(ax, w, lim, "deep network", "#000000", "-")
    lines = {"deep network": w}
    for name, direction in (directions or {}).items():
        is_vector = isinstance(direction, (list, tuple, np.ndarray)) and len(direction) == 2
        if name != "end_to_end" and is_vector:  # skips a directions.json's scalar entries
            lines[name] = np.asarray(direction, dtype=float)
    same = (coinciding(list(lines), lambda a, b: _line_gap(lines[a], lines[b]),
                       COINCIDE_LINE_DEG) if mark_coinciding else {})
    for name, vector in list(lines.items())[1:]:
        colour, style = BASELINE_STYLES.get(name, ("#555555", ":"))
        _draw_line(ax, vector, lim, marked_label(name, same), colour, style)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")


# ------------------------------------------------------------------ across seeds


def _across_seeds(
    curves: Any,
    savepath: str | Path,
    metrics: Mapping[str, str],
    ylabel: str,
    title: str,
    sharey: bool = False,
    ylim: tuple[float | None, float | None] | None = None,
    reference: float | None = None,
    empty: str = "no data",
) -> list[Path]:
    """One panel per metric present (2 x 2 for four), one colour per condition, one legend.

    ``metrics``: metric -> panel title. ``reference``: a dashed horizontal line (the
    optimum of a ratio). Conditions keep one colour across panels, in table order.
    """
    present = {
        m: t for m, t in metrics.items()
        if f"{m}_mean" in curves.columns and curves[f"{m}_mean"].notna().any()
    }
    if not present:
        fig, ax = new_figure()
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title(title)
        return save_figure(fig, savepath)
    n = len(present)
    nrows, ncols = (2, 2) if n == 4 else (1, n)
    size = FIG_SIZE if n == 1 else (3.6 * ncols, 2.7 * nrows)
    fig, axes = new_figure(nrows, ncols, figsize=size, squeeze=False, sharey=sharey)
    conditions = condition_order(curves)
    lines: dict[str, Any] = {}
    for index, (ax, (metric, panel_title)) in enumerate(zip(axes.ravel(), present.items())):
        for label, line in plotting.draw_curves(ax, curves, metric, conditions=conditions).items():
            lines.setdefault(label, line)
        if reference is not None:
            ax.axhline(reference, color="0.35", linestyle="--", linewidth=1)
        if n > 1:
            ax.set_title(panel_title)
        if index % ncols == 0:
            ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
    labels = [str(c) for c in conditions if str(c) in lines]
    handles = [lines[label] for label in labels]
    if reference is not None:
        handles.append(axes.ravel()[0].lines[-1])
        labels.append(f"optimum ({reference:g})")
    if n == 1:
        axes[0, 0].set_title(title)
        plotting.place_legend(axes[0, 0], handles, labels, title=BAND_NOTE)
    else:
        fig.suptitle(title)
        fig.tight_layout()
        plotting.place_legend(fig, handles, labels, title=BAND_NOTE)
    return save_figure(fig, savepath)


# ------------------------------------------------------------------ grid summaries

POTENTIAL_ORDER = {"quadratic": 0, "lp": 1, "hypentropy": 2}
"""Rows of grid figures: gradient descent first, then lp by p, then hypentropy."""

CONDITION_KEYS = (
    "L", "dataset", "digits", "pca", "n_samples", "input_dim", "separation", "noise",
    "width", "init_scale", "loss", "lr", "epochs", "batch_size", "logreg_C", "dtype",
)
"""Config keys besides the potential setting that label a condition when they vary.

Listed rather than read from the config class: importing that imports the data package
and scikit-learn, seconds for a figure. Other columns of the tables (run ids, durations,
statistics) never split a condition.
"""


def potential_setting(potential: Any, p: Any = None, beta: Any = None) -> str:
    """``quadratic`` | ``lp p=1.5`` | ``hypentropy beta=1``: the potential and its parameter."""
    if potential == "lp":
        return f"lp p={float(p):g}"
    if potential == "hypentropy":
        ok = beta is not None and not (isinstance(beta, float) and math.isnan(beta))
        return f"hypentropy beta={float(beta):g}" if ok else "hypentropy"
    return str(potential)


def _settings(table: Any) -> list[str]:
    """Each row's potential setting: the ``setting`` column, else from potential, p, beta."""
    if "setting" in table.columns:
        return [str(s) for s in table["setting"]]
    if "potential" not in table.columns:
        return ["all runs"] * len(table)
    n = len(table)
    ps = table["p"] if "p" in table.columns else [None] * n
    betas = table["beta"] if "beta" in table.columns else [None] * n
    return [potential_setting(*row) for row in zip(table["potential"], ps, betas)]


def _setting_rank(setting: str) -> tuple[int, float]:
    name, _, rest = setting.partition(" ")
    try:
        value = float(rest.split("=", 1)[1]) if "=" in rest else 0.0
    except ValueError:
        value = 0.0
    return POTENTIAL_ORDER.get(name, len(POTENTIAL_ORDER)), value


def _varying(table: Any, keys: Iterable[str]) -> list[str]:
    return [k for k in keys if k in table.columns and table[k].astype(str).nunique() > 1]


def _sorted_with_labels(table: Any, extra_keys: Sequence[str], with_depth: bool) -> Any:
    """A copy with ``_setting``/``_row``/``_depth``/``_label`` columns, rows in paper order.

    ``_row``: the setting plus the extra keys that vary (``lp p=1.5, pca=50``); ``_depth``:
    L (or "all"); ``_label``: the row label plus ``L=<L>`` when L varies.
    """
    out = table.copy()
    out["_setting"] = _settings(out)
    extras = _varying(out, [k for k in extra_keys if k != "L"])
    out["_row"] = [
        ", ".join([s] + [f"{k}={plotting.show_value(v)}" for k, v in zip(extras, vals)])
        for s, *vals in zip(out["_setting"], *(out[k] for k in extras))
    ]
    has_depth = "L" in out.columns
    out["_depth"] = out["L"] if has_depth else "all"
    depth_varies = with_depth and has_depth and out["L"].astype(str).nunique() > 1
    out["_label"] = [
        f"{r}, L={plotting.show_value(d)}" if depth_varies else r
        for r, d in zip(out["_row"], out["_depth"])
    ]
    order = sorted(
        range(len(out)),
        key=lambda i: (
            _setting_rank(out["_setting"].iloc[i]),
            [str(out[k].iloc[i]) for k in extras],
            float(out["_depth"].iloc[i]) if has_depth else 0.0,
        ),
    )
    return out.iloc[order]


def condition_order(table: Any) -> list[Any]:
    """The table's conditions in paper order: quadratic, lp by p, hypentropy; then depth."""
    firsts = table.drop_duplicates("condition")
    return list(_sorted_with_labels(firsts, CONDITION_KEYS, with_depth=False)["condition"])


HEATMAPS = {
    "norm_balance": {"balance_drift_max": r"norm balance drift max$_k$ |drift|"},
    "alignment": {
        "align_min": r"alignment min$_k\, |u_k^\top v_{k+1}|$",
        "rank1_min": r"rank one min$_k\, \sigma_1 / \|W_k\|_F$",
    },
}
"""Heatmap figures (file suffix -> metric -> panel title)."""

HEATMAP_RANGES = {"align_min": (0.0, 1.0), "rank1_min": (0.0, 1.0)}
"""Fixed colour ranges of bounded metrics, so figures of different grids compare."""

HEATMAP_FORMATS = {"balance_drift_max": "{:.2e}", "align_min": "{:.3f}", "rank1_min": "{:.3f}"}
"""Cell text: drifts span decades (scientific); alignments sit near 1 (three decimals)."""


@styled
def plot_heatmaps(finals: Any, savepath_prefix: str | Path) -> list[Path]:
    """Norm balance and alignment at the end of training over potential setting x depth.

    ``finals``: the aggregated finals table. Cells are means across seeds; a cell without
    a value is blank, and a depth without any (L = 1 has no balance or alignment) is left
    out. Rows: quadratic, lp by p, hypentropy, each
    with any other varying group key (dataset, digits, pca) in its label. Writes
    ``<prefix>_norm_balance`` and ``<prefix>_alignment`` (.png, .pdf) where the metrics
    exist; returns every path written.
    """
    table = _sorted_with_labels(finals, CONDITION_KEYS, with_depth=False)
    paths: list[Path] = []
    for suffix, metrics in HEATMAPS.items():
        present = {
            m: t for m, t in metrics.items()
            if f"{m}_mean" in table.columns and table[f"{m}_mean"].notna().any()
        }
        if not present:
            continue
        pivots = {  # an all-NaN depth (L = 1 has no balance or alignment) is left out
            m: plotting.heatmap_table(table, "_row", "_depth", m).dropna(axis=1, how="all")
            for m in present
        }
        width, height = plotting.heatmap_size(next(iter(pivots.values())))
        fig, axes = new_figure(1, len(present), figsize=(width * len(present), height),
                               squeeze=False)
        for index, (ax, (metric, title)) in enumerate(zip(axes[0], present.items())):
            vmin, vmax = HEATMAP_RANGES.get(metric, (None, None))
            image = plotting.draw_heatmap(ax, pivots[metric], xlabel="depth L",
                                          ylabel="potential setting" if index == 0 else "",
                                          vmin=vmin, vmax=vmax,
                                          fmt=HEATMAP_FORMATS.get(metric, "{:.3g}"))
            if index > 0:
                ax.tick_params(labelleft=False)
            plotting.add_colourbar(fig, image, ax)
            ax.set_title(title)
        fig.tight_layout()
        paths += save_figure(fig, f"{savepath_prefix}_{suffix}")
    return paths


FINAL_BOXPLOTS = {
    "angles": ("final angle (degrees)", {
        f"final.angle_{name}": f"vs {label}" for name, label in BASELINE_LABELS.items()
    }),
    "margins": ("margin / optimal margin", {
        "final.margin_l2_ratio": r"$\ell_2$ margin $\gamma_2 / \gamma_2^*$",
        "final.margin_p_ratio": r"$\ell_p$ margin $\gamma_p / \gamma_p^*$",
    }),
}
"""Boxplot figures (file suffix -> (y label, column -> panel title))."""


def plot_final_boxplots(runs: Any, savepath_prefix: str | Path) -> list[Path]:
    """Final angles and margin ratios across seeds, one box per condition.

    ``runs``: the raw runs table (one row per run; ``final.<metric>`` columns). Conditions
    are the ``condition`` column when present, else the potential setting plus whichever
    config keys vary besides the seeds (``lp p=1.5, L=2``). Writes ``<prefix>_angles`` and
    ``<prefix>_margins`` (.png, .pdf) where the columns exist; returns every path written.
    """
    table = _sorted_with_labels(runs, CONDITION_KEYS, with_depth=True)
    by = "condition" if "condition" in table.columns else "_label"
    paths: list[Path] = []
    for suffix, (ylabel, panels) in FINAL_BOXPLOTS.items():
        present = {
            c: t for c, t in panels.items() if c in table.columns and table[c].notna().any()
        }
        if present:
            paths += plotting.plot_boxplots(table, present, by, f"{savepath_prefix}_{suffix}",
                                            ylabel)
    return paths


def _as_vector(model: Any) -> np.ndarray:
    if hasattr(model, "end_to_end"):
        return model.end_to_end().detach().cpu().numpy().astype(float)
    return np.asarray(model, dtype=float).reshape(-1)


def _draw_line(ax: Any, w: np.ndarray, lim: float, label: str, colour: str, style: str) -> None:
    """The line {x : <w, x> = 0}, i.e. through the origin along (-w2, w1)."""
    norm = np.linalg.norm(w)
    if norm == 0:
        return
    t = np.array([-2 * lim, 2 * lim])
    d = np.array([-w[1], w[0]]) / norm
    ax.plot(t * d[0], t * d[1], color=colour, linestyle=style, linewidth=1.4, label=label)
