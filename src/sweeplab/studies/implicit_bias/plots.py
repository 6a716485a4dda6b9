"""Per-run figures of the implicit-bias study, in paper style, as .png and .pdf.

Each ``plot_*_over_time(results, savepath)`` takes a run's logged metrics, either the rows
of ``metrics.jsonl`` (a list of dicts) or a mapping of column name -> values, and writes
``savepath.png`` and ``savepath.pdf``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.analysis.style import new_figure, save_figure, styled

BASELINE_LABELS = {
    "svm": r"$\ell_2$ SVM",
    "logreg": "logistic regression",
    "lp_max_margin": r"$\ell_p$ max-margin",
    "linear_md": "linear MD (L = 1)",
}
"""Display names of the baseline directions."""

Results = Sequence[Mapping[str, Any]] | Mapping[str, Sequence[float]]


def columns(results: Results) -> dict[str, np.ndarray]:
    """Metric rows or a column mapping -> dict of float arrays (missing values NaN)."""
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
    """Angle (degrees) between the end-to-end predictor and each baseline, per epoch."""
    cols = columns(results)
    epochs = _epochs(cols)
    fig, ax = new_figure()
    mask = _log_x(ax, epochs)
    for name, label in BASELINE_LABELS.items():
        if f"angle_{name}" in cols:
            ax.plot(epochs[mask], cols[f"angle_{name}"][mask], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("angle to baseline (degrees)")
    ax.set_ylim(bottom=0)
    ax.set_title("Direction of the end-to-end predictor")
    ax.legend()
    return save_figure(fig, savepath)


@styled
def plot_margins_over_time(
    results: Results, savepath: str | Path, p: float | None = None
) -> list[Path]:
    """Normalized margins gamma_2 and gamma_p per epoch, with the optimal margins dashed."""
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
    """Drift of the layer balances from initialization and the layer norms, per epoch."""
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
    """Adjacent-layer alignment |u_k^T v_{k+1}| and rank-one ratios, per epoch."""
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
    {x : <w, x> = 0}.
    """
    X = np.asarray(X, dtype=float)
    if X.shape[1] != 2:
        raise ValueError(f"decision boundaries need 2-D inputs, got dimension {X.shape[1]}")
    w = _as_vector(model)
    fig, ax = new_figure(figsize=(4.2, 4.0))
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
            s=8,
            c=colour,
            marker=marker,
            label=f"y = {label:+d}",
            edgecolors="none",
            alpha=0.8,
        )
    _draw_line(ax, w, lim, "deep network", "#000000", "-")
    styles = iter([("#009E73", "--"), ("#CC79A7", "-."), ("#E69F00", ":"), ("#0072B2", "--")])
    for name, direction in (directions or {}).items():
        is_vector = isinstance(direction, (list, tuple, np.ndarray)) and len(direction) == 2
        vector = np.asarray(direction, dtype=float) if is_vector else None
        if name == "end_to_end" or vector is None:
            continue  # also skips the scalar entries of a directions.json mapping
        colour, style = next(styles, ("#555555", ":"))
        _draw_line(ax, vector, lim, BASELINE_LABELS.get(name, name), colour, style)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_title("Decision boundaries")
    ax.legend(loc="best", fontsize=7)
    return save_figure(fig, savepath)


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
