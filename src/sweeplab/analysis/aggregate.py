"""Aggregate runs across seeds: per-condition statistics of final metrics and curves.

A *condition* is one combination of the group keys (a study's analysis names them); the
runs of a condition differ only in what is not grouped on, typically the seed. For each
condition and metric this gives the mean, the sample standard deviation (ddof=1), min,
max and a 95% Student-t confidence interval of the mean
(:func:`sweeplab.analysis.stats.t_interval`),

    mean +- t_{0.975, n-1} * std / sqrt(n).

With n < 2 there is no spread to estimate, so std and the interval are NaN. NaN values are left
out per metric; ``<metric>_count`` says how many values each statistic used.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.analysis.load import AnalysisInputError
from sweeplab.analysis.stats import t_interval
from sweeplab.core.experiment import safe_name, save_json

STATS = ("count", "mean", "std", "min", "max", "ci_low", "ci_high")
"""The statistics :func:`aggregate_final` gives per metric, as ``<metric>_<stat>``."""


# --------------------------------------------------------------------------- conditions


def present_keys(runs: pd.DataFrame, group_keys: Sequence[str]) -> list[str]:
    """The group keys that are columns of ``runs``, in the order given."""
    return [k for k in dict.fromkeys(group_keys) if k in runs.columns]


def _norm(value: Any) -> Any:
    """A cell as a plain hashable Python value; NaN and pandas' NA become ``None``."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_norm(v) for v in value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def varying_keys(runs: pd.DataFrame, group_keys: Sequence[str]) -> list[str]:
    """The group keys present in ``runs`` whose value is not the same for every run.

    Pass the result to :func:`condition_label`: a key every run shares says nothing
    about which condition a row is.
    """
    return [k for k in present_keys(runs, group_keys)
            if len({_norm(v) for v in runs[k]}) > 1]


def format_value(value: Any) -> str:
    """A parameter value as run names write it: ``1.5``, ``3`` (for 3.0), ``0-1``, ``none``."""
    value = _norm(value)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, tuple):
        return "-".join(format_value(v) for v in value)
    return str(value)


def condition_label(row: Mapping[str, Any] | pd.Series, group_keys: Sequence[str]) -> str:
    """``potential=lp, p=1.5, L=2``: each of ``group_keys`` with its value in ``row``.

    Give the keys that vary (:func:`varying_keys`) to leave out those every run shares;
    with no key at all the label is ``all runs``.
    """
    parts = [f"{k}={format_value(row[k])}" for k in group_keys]
    return ", ".join(parts) if parts else "all runs"


def _sort_key(value: Any) -> tuple:
    """Orders None < numbers < strings < tuples, each among their own kind naturally."""
    if value is None:
        return (0,)
    if isinstance(value, numbers.Real):
        return (1, float(value))
    if isinstance(value, tuple):
        return (3, tuple(_sort_key(v) for v in value))
    return (2, str(value))


def assign_conditions(runs: pd.DataFrame, group_keys: Sequence[str]
                      ) -> tuple[np.ndarray, pd.DataFrame]:
    """Which condition each run belongs to.

    Returns ``(codes, conditions)``: ``codes[i]`` is the row of ``conditions`` for run
    ``i`` of ``runs``; ``conditions`` has the present group keys, ``condition`` (the
    label over the varying keys) and ``run_ids`` (a tuple per condition), sorted by the
    key values.
    """
    keys = present_keys(runs, group_keys)
    label_keys = varying_keys(runs, keys)
    columns = [[_norm(v) for v in runs[k]] for k in keys]
    tuples = list(zip(*columns)) if keys else [()] * len(runs)
    distinct = sorted(set(tuples), key=lambda t: tuple(_sort_key(v) for v in t))
    index = {t: i for i, t in enumerate(distinct)}
    codes = np.fromiter((index[t] for t in tuples), dtype=np.int64, count=len(tuples))
    rows = []
    for t in distinct:
        row = dict(zip(keys, t))
        row["condition"] = condition_label(row, label_keys)
        rows.append(row)
    conditions = pd.DataFrame(rows, columns=[*keys, "condition"])
    for k in keys:  # keep tuples and None as objects rather than letting pandas coerce
        conditions[k] = pd.Series([r[k] for r in rows], dtype=object) \
            if any(isinstance(r[k], tuple) or r[k] is None for r in rows) else conditions[k]
    run_ids = runs["run_id"].to_numpy() if "run_id" in runs.columns \
        else np.arange(len(runs)).astype(str)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(distinct) + 1))
    conditions["run_ids"] = [tuple(run_ids[order[a:b]]) for a, b in zip(bounds, bounds[1:])]
    return codes, conditions


# --------------------------------------------------------------------------- final metrics


def _metric_names(runs: pd.DataFrame, metrics: Sequence[str] | None
                  ) -> tuple[list[str], list[str]]:
    """``(present, missing)`` final metric names, without ``final.``.

    By default every numeric or boolean final metric. A requested metric that no run
    recorded (``align_min`` in a grid of depth-1 runs only) is missing, not an error: a
    study's list of metrics must work for every grid of it.
    """
    available = [c[len("final."):] for c in runs.columns if c.startswith("final.")]
    if metrics is None:
        return [m for m in available
                if pd.api.types.is_numeric_dtype(runs[f"final.{m}"])
                or pd.api.types.is_bool_dtype(runs[f"final.{m}"])], []
    names = list(dict.fromkeys(m[len("final."):] if m.startswith("final.") else m
                               for m in metrics))
    return [m for m in names if m in available], [m for m in names if m not in available]


def _as_float(series: pd.Series) -> np.ndarray:
    """A column as float64: booleans 0/1, anything not a number NaN."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype("float64").to_numpy(na_value=np.nan)
    return pd.to_numeric(series, errors="coerce").astype("float64").to_numpy()


def aggregate_final(runs: pd.DataFrame, group_keys: Sequence[str],
                    metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per condition: statistics of each final metric across its runs.

    Columns: the group keys present in ``runs``, ``condition`` (label), ``count`` (runs),
    then per metric ``m`` (named without ``final.``): ``m_count`` (non-NaN values),
    ``m_mean``, ``m_std`` (ddof=1), ``m_min``, ``m_max``, ``m_ci_low``, ``m_ci_high``
    (95% Student-t; NaN for fewer than two values), and last ``run_ids``.
    ``metrics=None`` takes every numeric or boolean final metric; a requested metric no
    run recorded gets no columns and is named in ``attrs["missing_metrics"]``.
    """
    names, missing = _metric_names(runs, metrics)
    codes, conditions = assign_conditions(runs, group_keys)
    table = conditions.drop(columns="run_ids")
    table["count"] = np.bincount(codes, minlength=len(conditions))
    if names:
        values = pd.DataFrame({m: _as_float(runs[f"final.{m}"]) for m in names})
        grouped = values.groupby(codes).agg(["count", "mean", "std", "min", "max"])
        grouped = grouped.reindex(range(len(conditions)))
        out: dict[str, Any] = {}
        for m in names:
            n = grouped[(m, "count")].fillna(0).to_numpy().astype(np.int64)
            mean = grouped[(m, "mean")].to_numpy()
            std = grouped[(m, "std")].to_numpy()
            low, high = t_interval(mean, std, n)
            out.update({f"{m}_count": n, f"{m}_mean": mean, f"{m}_std": std,
                        f"{m}_min": grouped[(m, "min")].to_numpy(),
                        f"{m}_max": grouped[(m, "max")].to_numpy(),
                        f"{m}_ci_low": low, f"{m}_ci_high": high})
        table = pd.concat([table, pd.DataFrame(out, index=table.index)], axis=1)
    table["run_ids"] = conditions["run_ids"]
    table.attrs["group_keys"] = present_keys(runs, group_keys)
    table.attrs["metrics"] = names
    table.attrs["missing_metrics"] = missing
    return table


# --------------------------------------------------------------------------- curves


def aggregate_curves(metrics_long: pd.DataFrame, runs: pd.DataFrame,
                     group_keys: Sequence[str],
                     metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per condition and epoch: mean, std (ddof=1) and count of each metric across runs.

    ``metrics_long`` is :func:`sweeplab.analysis.load.load_metrics`'s table (``run_id``,
    ``epoch``, metric columns); ``runs`` the runs table that says each run's condition.
    Columns: ``condition``, the group keys, ``epoch``, then ``m_mean``, ``m_std``,
    ``m_count`` per metric (every metric column by default; a requested metric that is
    not a column gets none and is named in ``attrs["missing_metrics"]``). Rows of runs
    not in ``runs`` are ignored. One groupby over an integer (condition, epoch) key.
    """
    available = [c for c in metrics_long.columns if c not in ("run_id", "epoch")]
    requested = available if metrics is None else list(dict.fromkeys(metrics))
    names = [m for m in requested if m in available]
    codes, conditions = assign_conditions(runs, group_keys)
    keys = present_keys(runs, group_keys)

    run_ids = pd.Index(runs["run_id"])
    col = metrics_long["run_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        # map each category once, then every row through its code
        cat_to_run = run_ids.get_indexer(col.cat.categories)
        cat_codes = col.cat.codes.to_numpy()
        run_of_row = np.where(cat_codes >= 0, cat_to_run[cat_codes], -1)
    else:
        run_of_row = run_ids.get_indexer(col)
    epoch = metrics_long["epoch"].to_numpy(dtype=np.int64)
    values = metrics_long[names]
    keep = run_of_row >= 0
    if not keep.all():
        run_of_row, epoch, values = run_of_row[keep], epoch[keep], values[keep]
    cond = codes[run_of_row]
    e0 = int(epoch.min()) if len(epoch) else 0
    span = int(epoch.max()) - e0 + 1 if len(epoch) else 1
    key = cond * span + (epoch - e0)

    # one grouping, two cython passes (mean, std); counts by bincount, several times
    # faster than groupby's count on millions of rows
    dense, group_key = pd.factorize(key, sort=True)
    grouped = values.groupby(dense, sort=True)
    mean, std = grouped.mean(), grouped.std()
    sizes = np.bincount(dense, minlength=len(group_key))
    cond_of_group, epoch_of_group = np.divmod(group_key, span)

    out: dict[str, Any] = {"condition": conditions["condition"].to_numpy()[cond_of_group]}
    for k in keys:
        out[k] = conditions[k].to_numpy()[cond_of_group]
    out["epoch"] = epoch_of_group + e0
    for m in names:
        nan = np.isnan(values[m].to_numpy())
        out[f"{m}_mean"] = mean[m].to_numpy()
        out[f"{m}_std"] = std[m].to_numpy()
        out[f"{m}_count"] = sizes if not nan.any() else np.bincount(
            dense, weights=~nan, minlength=len(group_key)).astype(np.int64)
    frame = pd.DataFrame(out)
    frame.attrs["missing_metrics"] = [m for m in requested if m not in available]
    return frame


# --------------------------------------------------------------------------- LaTeX


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
    "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def latex_escape(text: Any) -> str:
    """``text`` as literal LaTeX text: ``_ % & # $ { } ~ ^ \\`` escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _cell(table: pd.DataFrame, row: int, column: str, fmt: str) -> tuple[str, bool]:
    """``(LaTeX cell, is numeric)`` for ``column`` of ``table``'s row ``row``."""
    if f"{column}_mean" in table.columns:
        mean = table[f"{column}_mean"].iloc[row]
        std = table[f"{column}_std"].iloc[row] if f"{column}_std" in table.columns else np.nan
        if pd.isna(mean):
            return "--", True
        if pd.isna(std):
            return f"${fmt.format(mean)}$", True
        return f"${fmt.format(mean)} \\pm {fmt.format(std)}$", True
    value = table[column].iloc[row]
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return ("--" if pd.isna(value) else latex_escape(format_value(value))), True
    return latex_escape(value if isinstance(value, str) else format_value(value)), False


def to_latex(table: pd.DataFrame, columns: Sequence[tuple[str, str]], caption: str,
             label: str, fmt: str = "{:.2f}") -> str:
    """A booktabs table of ``table``'s rows, ready to ``\\input`` into a paper.

    ``columns``: ``(column, header)`` pairs. A metric ``m`` with ``m_mean``/``m_std``
    columns (as :func:`aggregate_final` makes) shows ``$mean \\pm std$``, or the mean
    alone where std is NaN, ``--`` where the mean is (both with ``fmt``); any other
    column (a group key, ``count``) shows its value as run names write it (``1.5``,
    ``3``, ``0-1``), escaped. Headers are escaped text;
    ``caption`` and ``label`` are LaTeX as given. Text columns align left, numbers right.
    Needs ``\\usepackage{booktabs}``.
    """
    for column, _ in columns:
        if f"{column}_mean" not in table.columns and column not in table.columns:
            raise AnalysisInputError(f"to_latex: no column {column!r} (nor {column}_mean)")
    body: list[list[str]] = []
    numeric = [True] * len(columns)
    for row in range(len(table)):
        cells = []
        for j, (column, _) in enumerate(columns):
            text, is_num = _cell(table, row, column, fmt)
            numeric[j] = numeric[j] and is_num
            cells.append(text)
        body.append(cells)
    align = "".join("r" if num else "l" for num in numeric)
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        " & ".join(latex_escape(header) for _, header in columns) + r" \\",
        r"\midrule",
        *(" & ".join(cells) + r" \\" for cells in body),
        r"\bottomrule",
        r"\end{tabular}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- JSON


def _stat_columns(table: pd.DataFrame) -> dict[str, list[str]]:
    """Metric -> its statistic columns, found by name (``<metric>_mean`` and siblings)."""
    out: dict[str, list[str]] = {}
    for c in table.columns:
        if isinstance(c, str) and c.endswith("_mean"):
            m = c[: -len("_mean")]
            out[m] = [s for s in STATS if f"{m}_{s}" in table.columns]
    return out


def write_condition_json(agg_final: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """One ``<condition>.json`` per row of :func:`aggregate_final`'s table, in ``out_dir``.

    Each file holds ``condition``, ``group`` (key -> value), ``count``, ``stats``
    (metric -> {count, mean, std, min, max, ci_low, ci_high}; NaN as ``null``) and
    ``run_ids``. File names are the label made file-system safe (``all_runs.json`` with
    no label), with ``-2``, ``-3``, ... where two labels would collide. Written
    atomically; returns the paths in row order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = list(agg_final.columns)
    cut = columns.index("condition") if "condition" in columns else 0
    keys = list(agg_final.attrs.get("group_keys", columns[:cut]))
    per_metric = _stat_columns(agg_final)
    paths: list[Path] = []
    used: set[str] = set()
    for _, row in agg_final.iterrows():
        label = str(row.get("condition", "all runs"))
        stem = safe_name(label.replace(", ", ","))
        name, i = stem, 1
        while name in used:
            i += 1
            name = f"{stem}-{i}"
        used.add(name)
        doc = {
            "condition": label,
            "group": {k: _jsonable(row[k]) for k in keys if k in row.index},
            "count": _jsonable(row.get("count")),
            "stats": {m: {s: _jsonable(row[f"{m}_{s}"]) for s in stat_names}
                      for m, stat_names in per_metric.items()},
            "run_ids": list(row["run_ids"]) if "run_ids" in row.index else [],
        }
        paths.append(save_json(doc, out_dir / f"{name}.json"))
    return paths


def _jsonable(value: Any) -> Any:
    value = _norm(value)
    if isinstance(value, tuple):
        return list(value)
    return value
