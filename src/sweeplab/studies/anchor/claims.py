"""What the anchor studies' runs show for each claim of their ``paper_values_*.yaml``.

The paper's numbers and sources live in ``paper_values_composite.yaml`` and
``paper_values_inverse.yaml`` beside this module; here each claim id gets the runs it is
about (model, depth, gamma: the paper's setting of that figure) and the statistic it
compares, as a :class:`~sweeplab.analysis.reproduction.Measured`. Runs at other settings
are not used, so a claim whose setting did not run is ``not run``.

Claims about which solution a model prefers (composite or symmetric accuracy on the
held-out pair) use only runs that fit their training set (train accuracy >= ``FIT_ACC``):
a model that has not fit its training set says nothing about the solution it prefers.
When none of the matching runs fit, the claim is ``not run`` and its note says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.analysis.reproduction import Measured
from sweeplab.analysis.spec import AnalysisData

HERE = Path(__file__).resolve().parent
COMPOSITE_VALUES = HERE / "paper_values_composite.yaml"
INVERSE_VALUES = HERE / "paper_values_inverse.yaml"

FIT_ACC = 0.95
"""Train accuracy from which a run counts as having fit its training set."""

LARGE_INIT = (0.1, 0.2, 0.3, 0.4)
SMALL_INIT = (1.0, 1.5, 2.0)
INVERSE_GAMMA = 0.6
"""Fig. 9's curves are the gamma = 0.6 row of App. Fig. 15."""
ABOVE_CHANCE = 0.3
"""An OOD accuracy above this (1.5x the 20% of a guess) has the paper's direction."""

SCALE_KEYS = (("n_train", "{:,} samples"), ("epochs", "{} epochs"), ("batch_size", "batch {}"),
              ("d_model", "d_model {}"), ("d_state", "d_state {}"))


def select(runs: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """Runs whose config matches ``where``: key -> value, or a tuple of allowed values
    (floats compared with a relative tolerance of 1e-9)."""
    keep = pd.Series(True, index=runs.index)
    for key, allowed in where.items():
        if key not in runs:
            return runs.iloc[0:0]
        allowed = allowed if isinstance(allowed, tuple) else (allowed,)
        column = runs[key]
        if all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in allowed):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            hit = np.zeros(len(values), dtype=bool)
            for a in allowed:
                hit |= np.isclose(values, float(a), rtol=1e-9, atol=0.0)
            keep &= hit
        else:
            keep &= column.astype(str).isin([str(a) for a in allowed]).to_numpy()
    return runs[keep]


def _final(runs: pd.DataFrame, metric: str) -> np.ndarray:
    column = f"final.{metric}"
    if column not in runs:
        return np.full(len(runs), np.nan)
    return pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)


def scale_of(runs: pd.DataFrame) -> str:
    """What ran, in words: the sizes of ``runs`` (each key's distinct values)."""
    parts = []
    for key, fmt in SCALE_KEYS:
        if key in runs:
            values = sorted({int(v) for v in pd.to_numeric(runs[key], errors="coerce").dropna()})
            if values:
                parts.append(" / ".join(fmt.format(v) for v in values))
    return ", ".join(parts)


def _seeds(runs: pd.DataFrame) -> int:
    return int(runs["seed"].nunique()) if "seed" in runs else len(runs)


def fitted(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose train accuracy reached ``FIT_ACC``."""
    return runs[_final(runs, "train_acc") >= FIT_ACC]


def _train_note(runs: pd.DataFrame) -> str:
    train = _final(runs, "train_acc")
    return f"train {np.nanmean(train):.2f}" if np.isfinite(train).any() else ""


def solution_measure(
    runs: pd.DataFrame, stat: Callable[[pd.DataFrame], float],
    direction: Callable[[pd.DataFrame], bool] | None = None,
) -> Measured | None:
    """``stat`` over the runs that fit their training set; None when no run matches,
    a value-less Measured (``not run``) with the reason when none of them fit."""
    if runs.empty:
        return None
    fit = fitted(runs)
    if fit.empty:
        return Measured(None, 0, scale_of(runs), note=f"none of the {len(runs)} runs fit "
                        f"its training set ({_train_note(runs)})")
    note = f"{len(fit)} of {len(runs)} runs fit, {_train_note(fit)}"
    return Measured(stat(fit), _seeds(fit), scale_of(fit),
                    direction=bool(direction(fit)) if direction else False, note=note)


def plain_measure(runs: pd.DataFrame, metric: str) -> Measured | None:
    """The mean of ``metric`` over ``runs`` (None when none of them recorded it)."""
    values = _final(runs, metric)
    if not np.isfinite(values).any():
        return None
    return Measured(float(np.nanmean(values)), _seeds(runs), scale_of(runs),
                    note=_train_note(runs) if metric != "train_acc" else "")


def cell_means(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Mean of ``metric`` per (depth, gamma) cell, so every cell weighs the same."""
    frame = pd.DataFrame({"n_layers": runs["n_layers"].to_numpy(),
                          "gamma": runs["gamma"].to_numpy(), "v": _final(runs, metric)})
    return frame.groupby(["n_layers", "gamma"])["v"].mean()


def _comp(runs: pd.DataFrame) -> float:
    return float(cell_means(runs, "composite_acc").mean())


def _sym(runs: pd.DataFrame) -> float:
    return float(cell_means(runs, "symmetric_acc").mean())


def _higher(runs: pd.DataFrame) -> float:
    return max(_comp(runs), _sym(runs))


def phase_rise(runs: pd.DataFrame) -> Measured | None:
    """Mean composite accuracy at gamma >= 1.0 minus at gamma <= 0.4 (fitted runs)."""
    hi = fitted(select(runs, model_type="mamba_standard", gamma=SMALL_INIT))
    lo = fitted(select(runs, model_type="mamba_standard", gamma=LARGE_INIT))
    if hi.empty or lo.empty:
        both = select(runs, model_type="mamba_standard", gamma=LARGE_INIT + SMALL_INIT)
        if both.empty:
            return None
        return Measured(None, 0, scale_of(both), note="needs fitted runs at gamma <= 0.4 "
                        f"and >= 1.0 ({len(lo)} and {len(hi)} fit)")
    rise = _comp(hi) - _comp(lo)
    return Measured(rise, min(_seeds(hi), _seeds(lo)), scale_of(pd.concat([hi, lo])),
                    direction=rise > 0, note=f"{_comp(lo):.2f} -> {_comp(hi):.2f}")


def measure_composite(data: AnalysisData) -> dict[str, Measured | None]:
    """Each claim of ``paper_values_composite.yaml`` from the runs of ``data``."""
    runs = data.runs
    standard = select(runs, model_type="mamba_standard")
    large, small = select(standard, gamma=LARGE_INIT), select(standard, gamma=SMALL_INIT)
    ones = select(runs, model_type="mamba_ones_conv", n_layers=5, gamma=1.0)
    pos = select(runs, model_type="mamba_pos_encoding", n_layers=2, gamma=0.5)
    conv_tf = select(runs, model_type="transformer_with_conv", n_layers=2, gamma=1.0)

    def comp_wins(r: pd.DataFrame) -> bool:
        return _comp(r) > _sym(r)

    def sym_wins(r: pd.DataFrame) -> bool:
        return _sym(r) > _comp(r)

    return {
        "phase_large_init_neither": solution_measure(large, _higher),
        "phase_small_init_composite": solution_measure(small, _comp, comp_wins),
        "phase_small_init_symmetric": solution_measure(small, _sym),
        "phase_composite_rises": phase_rise(runs),
        "ones_conv_symmetric": solution_measure(ones, _sym, sym_wins),
        "ones_conv_composite": solution_measure(ones, _comp),
        "standard_l5_composite": solution_measure(select(standard, n_layers=5, gamma=1.0),
                                                  _comp, comp_wins),
        "pos_encoding_symmetric": solution_measure(pos, _sym, sym_wins),
        "pos_encoding_composite": solution_measure(pos, _comp),
        "standard_l2_neither": solution_measure(select(standard, n_layers=2, gamma=0.5),
                                                _higher),
        "transformer_conv_composite": solution_measure(conv_tf, _comp, comp_wins),
    }


def _model(runs: pd.DataFrame, model_type: str) -> pd.DataFrame:
    return select(runs, model_type=model_type, n_layers=2, gamma=INVERSE_GAMMA)


def residual_gain(runs: pd.DataFrame) -> Measured | None:
    """Residual minus standard Mamba, mean test accuracy, 2 layers, gamma 0.6."""
    res, std = _model(runs, "mamba_residual"), _model(runs, "mamba_standard")
    if res.empty or std.empty:
        return None
    a, b = np.nanmean(_final(res, "test_acc")), np.nanmean(_final(std, "test_acc"))
    return Measured(float(a - b), min(_seeds(res), _seeds(std)), scale_of(res),
                    direction=bool(a > b), note=f"{a:.2f} vs {b:.2f}")


def test_order(runs: pd.DataFrame) -> Measured | None:
    """The three models by mean test accuracy over every gamma that ran, at 2 layers
    (App. Fig. 15 averages gamma 0.5-1.0); None unless all three ran."""
    models = ("mamba_residual", "transformer", "mamba_standard")
    rows = select(runs, model_type=models, n_layers=2)
    means = {}
    for model in models:
        values = _final(select(rows, model_type=model), "test_acc")
        if np.isfinite(values).any():
            means[model] = float(np.nanmean(values))
    if len(means) < len(models):
        return None
    order = sorted(means, key=lambda m: -means[m])
    gammas = sorted({float(g) for g in rows["gamma"]})
    note = ", ".join(f"{m} {means[m]:.2f}" for m in order)
    return Measured(order, _seeds(rows), scale_of(rows),
                    note=f"{note}; gamma {', '.join(f'{g:g}' for g in gammas)}")


def measure_inverse(data: AnalysisData) -> dict[str, Measured | None]:
    """Each claim of ``paper_values_inverse.yaml`` from the runs of ``data``."""
    runs = data.runs
    mamba, tf, res = (_model(runs, m) for m in ("mamba_standard", "transformer",
                                                 "mamba_residual"))
    out = {
        "mamba_fits_train": plain_measure(mamba, "train_acc"),
        "mamba_test_chance": plain_measure(mamba, "test_acc"),
        "mamba_ood_chance": plain_measure(mamba, "ood_acc"),
        "transformer_test": plain_measure(tf, "test_acc"),
        "transformer_ood": plain_measure(tf, "ood_acc"),
        "residual_test": plain_measure(res, "test_acc"),
        "residual_ood": plain_measure(res, "ood_acc"),
        "residual_beats_mamba": residual_gain(runs),
        "test_order": test_order(runs),
    }
    for claim in ("transformer_ood", "residual_ood"):  # above chance, if below the paper's
        m = out[claim]
        if m is not None and not math.isnan(m.value):
            out[claim] = Measured(m.value, m.seeds, m.scale,
                                  direction=m.value > ABOVE_CHANCE, note=m.note)
    return out
