"""What an implicit-bias run leaves in its directory besides its metrics.

``dataset.npz`` (the data as trained on), the final metrics dict, ``directions.json``
(the end-to-end predictor beside every baseline) and the per-run figures. One run
(:func:`~sweeplab.studies.implicit_bias.study.run`) and a batch of runs trained together
(:mod:`~sweeplab.studies.implicit_bias.batched`) write them through these functions, so
the two produce the same files.

The figures' module (and with it matplotlib) is imported only when a figure is drawn:
a run with ``plots: false`` imports no matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from sweeplab.core.context import RunContext
from sweeplab.data import Dataset
from sweeplab.studies.implicit_bias.metrics import angle_deg

DIRECTION_NAMES = ("svm", "logreg", "lp_max_margin", "linear_md")
"""The baseline directions, in the order metrics and files list them."""


def save_dataset(ctx: RunContext, data: Dataset) -> None:
    """``dataset.npz``: X, y (and X_test, y_test when there is a test set) as trained on."""
    arrays = {"X": data.X, "y": data.y}
    if data.X_test is not None:
        arrays.update(X_test=data.X_test, y_test=data.y_test)
    np.savez_compressed(ctx.path("dataset.npz"), **arrays)
    ctx.logger.info(
        "data %s: %d samples, dimension %d", data.name, data.X.shape[0], data.X.shape[1]
    )


def final_metrics(
    epochs: int,
    last: Mapping[str, float],
    data: Dataset,
    w: np.ndarray,
    directions: Mapping[str, np.ndarray | None],
    separable: bool,
) -> dict[str, float]:
    """The run's final dict: the last logged metrics, test accuracy and data facts.

    ``test_acc`` = mean_i [sign(<w, x_i>) = y_i] over the test set;
    ``linear_md_angle_lp_max_margin`` is the angle of the linear MD solution to the lp
    max-margin direction (how far the linear model itself is from its limit).
    """
    final: dict[str, float] = {"epoch": epochs, **last}
    if data.X_test is not None and len(data.y_test):
        final["test_acc"] = float(np.mean(np.sign(data.X_test @ w) == data.y_test))
    if directions["lp_max_margin"] is not None:
        final["linear_md_angle_lp_max_margin"] = angle_deg(
            directions["linear_md"], directions["lp_max_margin"]
        )
    final.update(separable=separable, n_train=int(data.X.shape[0]),
                 input_dim=int(data.X.shape[1]))
    return final


def save_directions(
    ctx: RunContext,
    w: np.ndarray,
    directions: Mapping[str, np.ndarray | None],
    p: float,
    separable: bool,
    data: Dataset,
) -> None:
    """``directions.json``: the end-to-end predictor, every baseline, lp's p and the data."""
    ctx.save_json("directions.json", {
        "end_to_end": w,
        **directions,
        "lp_p": p,
        "separable": separable,
        "n_samples": int(data.X.shape[0]),
        "input_dim": int(data.X.shape[1]),
        "dataset": data.name,
    })


def save_figures(
    ctx: RunContext,
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    directions: dict[str, np.ndarray | None],
    p: float,
    formats: tuple[str, ...] = ("png",),
) -> None:
    """Angles, margins, balance and alignment over epochs; decision boundary when 2-D.

    Each figure is written in every format of ``formats`` (the config's ``figure_formats``).
    """
    from sweeplab.analysis.style import figure_formats
    from sweeplab.studies.implicit_bias import plots
    from sweeplab.track.local import read_metrics

    ctx.flush()
    rows = read_metrics(ctx.local.jsonl_path)
    figs = ctx.path("figs")
    with figure_formats(formats):
        plots.plot_angles_over_time(rows, figs / "angles")
        plots.plot_margins_over_time(rows, figs / "margins", p=p)
        plots.plot_norm_balance(rows, figs / "norm_balance")
        if any(k.startswith("align_") for k in rows[-1]):
            plots.plot_alignment(rows, figs / "alignment")
        if X.shape[1] == 2:
            plots.plot_decision_boundary(w, X, y, figs / "decision_boundary", directions)
