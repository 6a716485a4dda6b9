"""How ``sweeplab analyze`` treats the ``minima-volume`` study (Fan, Sandlund & Ko 2025).

"Sharp Minima Can Generalize: A Loss Landscape Perspective On Data", arXiv 2511.04808,
Sec. 4: how the volume of a minimum changes with the data it was trained on, in its own
loss landscape and in those of other dataset sizes, and how that relates to test
performance. A run (``model_<s>_data_<s>``) holds one model per number of added samples
m; its per-model tables (``volume.csv``, ``cutoffs.csv``, ``test_accuracies.csv``,
``cutoffs/loss_curves.npz``) are what is analysed here, beside ``final.json``.

Conditions are the varying parameters but the seeds (``model_seed``, ``data_seed``:
replicates). Everything below is a mean across seeds per (condition, m):

- figures: log-volume vs training-set size per landscape and cutoff, the unperturbed
  loss curves with their cutoff sizes, log-volume on the headline landscape vs test
  accuracy and test loss (:mod:`sweeplab.studies.volume.plots`);
- ``volume_summary.csv`` and ``tables/volume_summary.tex``: the per-model table (the
  generic pipeline tabulates ``final.json`` only, one row per condition, so this table
  is written by the figures step);
- findings: sentences computed from the numbers (trend of the volume with data, whether
  seeds agree, Spearman correlation with test accuracy, lower bounds, zero volumes).

The *headline landscape* of a model is the one its run reports (``headline`` in
``volume.csv``): in ``poison`` runs the clean base set, as in the authors' poison
notebooks, so that poison is not mixed with dataset size; elsewhere the model's own
training set. In ``poison`` the own (poisoned) landscape stays in the per-model table as
``log_volume_own_c<cutoff>``.

A log-volume of -inf is a zero volume (the unperturbed model is above the cutoff in that
landscape); a mean over seeds that includes one is -inf, and is shown as such, never
averaged away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.analysis.aggregate import to_latex
from sweeplab.analysis.pipeline import fmt_stat
from sweeplab.analysis.spec import AnalysisData, ReportTable, StudyAnalysis, TableSpec
from sweeplab.core.experiment import atomic_write_text
from sweeplab.studies.volume import plots
from sweeplab.studies.volume.by_k import k_report
from sweeplab.studies.volume.stats import spearman

GROUP_KEYS = (
    "category", "dataset", "normalize", "arch", "hidden", "channels", "optimizer", "lr",
    "momentum", "weight_decay", "epochs", "batch_size", "sam_rho", "base_size", "extra_sizes",
    "landscape_sizes", "test_size", "n_directions", "perturbation_seed", "direction_scaling",
    "max_coefficient", "n_coefficients", "coefficient_grid", "search", "coarse_stride",
    "loss_cutoffs", "uncrossed", "radius_norm",
)
"""Config keys that define a condition when they vary (seeds are replicates)."""

REPLICATE_KEYS = ("model_seed", "data_seed")
"""Seeds: runs that differ only in these are replicates of one condition."""

NO_RESULT_KEYS = ("data_dir", "device", "stages", "eval_batch", "batch", "log_interval",
                  "save_interval")
"""Config keys that change no result (where the files are, how the landscape and the
training are batched, which stages run now, logging): never a condition. Every config
key is in exactly one of GROUP_KEYS, REPLICATE_KEYS and NO_RESULT_KEYS (tested)."""

FINAL_METRICS = ("test_acc_fewest", "test_acc_most", "log_volume_fewest",
                 "log_volume_most", "log_volume_own_fewest", "log_volume_own_most",
                 "train_loss_fewest", "train_loss_most")

TABLES = (
    TableSpec(
        "final_metrics",
        "The models trained on the fewest and on the most samples: test accuracy, "
        "log-volume on their headline landscape (poison: the clean base set; else their "
        "own training set) at the first loss cutoff, train loss",
        (("test_acc_fewest", "test acc (fewest)"), ("test_acc_most", "test acc (most)"),
         ("log_volume_fewest", "log-vol (fewest)"), ("log_volume_most", "log-vol (most)"),
         ("train_loss_fewest", "train loss (fewest)"),
         ("train_loss_most", "train loss (most)")),
    ),
)

SUMMARY_CSV = "volume_summary.csv"
SUMMARY_TEX = "volume_summary"
"""Per-model table: ``<output>/volume_summary.csv`` and ``tables/volume_summary.tex``."""

RUN_FILES = ("volume.csv", "cutoffs.csv", "test_accuracies.csv", "cutoffs/loss_curves.npz")


# --------------------------------------------------------------------------- loading


@dataclass
class VolumeResults:
    """The per-model tables of every analysed run, each row tagged with run and condition.

    ``volume``, ``cutoffs``, ``tests``: the runs' CSVs stacked, with ``run_id``,
    ``condition``; ``curves``: (run_id, condition, m, train_size, s, loss), the
    unperturbed cumulative mean loss; ``missing``: (run_id, file) for files a run lacks
    (a stage not run), whose rows are then absent.
    """

    volume: pd.DataFrame
    cutoffs: pd.DataFrame
    tests: pd.DataFrame
    curves: pd.DataFrame
    missing: list[tuple[str, str]] = field(default_factory=list)


def run_conditions(finals: pd.DataFrame) -> dict[str, str]:
    """run_id -> condition label, from the aggregated table's ``run_ids``."""
    return {rid: str(row["condition"]) for _, row in finals.iterrows()
            for rid in row["run_ids"]}


def _tagged(frame: pd.DataFrame, run_id: str, condition: str) -> pd.DataFrame:
    frame.insert(0, "condition", condition)
    frame.insert(0, "run_id", run_id)
    return frame


def collect(data: AnalysisData) -> VolumeResults:
    """Read each run's volume, cutoff, test and loss-curve files (see :class:`VolumeResults`)."""
    condition_of = run_conditions(data.finals)
    parts: dict[str, list[pd.DataFrame]] = {"volume": [], "cutoffs": [], "tests": [],
                                            "curves": []}
    missing: list[tuple[str, str]] = []
    for _, run in data.runs.iterrows():
        rid, run_dir = str(run["run_id"]), Path(run["run_dir"])
        condition = condition_of.get(rid, "all runs")
        for name, key in zip(RUN_FILES[:3], ("volume", "cutoffs", "tests")):
            path = run_dir / name
            if path.is_file():
                parts[key].append(_tagged(pd.read_csv(path), rid, condition))
            else:
                missing.append((rid, name))
        npz = run_dir / RUN_FILES[3]
        if not npz.is_file():
            missing.append((rid, RUN_FILES[3]))
            continue
        with np.load(npz) as saved:
            for key in saved.files:
                m = int(key.removeprefix("m"))
                loss = np.asarray(saved[key], dtype=np.float64)
                parts["curves"].append(pd.DataFrame({
                    "run_id": rid, "condition": condition, "m": m,
                    "train_size": int(run["base_size"]) + m,
                    "s": np.arange(1, loss.size + 1), "loss": loss}))
    columns = {
        "volume": ["m", "train_size", "cutoff", "landscape_size", "log_volume",
                   "n_directions", "n_uncrossed", "headline"],
        "cutoffs": ["m", "train_size", "cutoff", "cutoff_size", "crossed"],
        "tests": ["m", "train_size", "test_loss", "test_acc"],
        "curves": ["m", "train_size", "s", "loss"],
    }
    frames = {k: pd.concat(v, ignore_index=True) if v
              else pd.DataFrame(columns=["run_id", "condition", *columns[k]])
              for k, v in parts.items()}
    for key in ("volume", "cutoffs"):
        frames[key]["cutoff"] = frames[key]["cutoff"].astype(float)
    rank = {c: i for i, c in enumerate(dict.fromkeys(data.finals["condition"].astype(str)))}
    for key, frame in frames.items():  # conditions in the order of the report's tables
        frames[key] = frame.sort_values("condition", key=lambda c: c.map(rank),
                                        kind="stable", ignore_index=True)
    return VolumeResults(frames["volume"], frames["cutoffs"], frames["tests"],
                         frames["curves"], missing)


# --------------------------------------------------------------------------- aggregates


def _mean_with_zero(values: pd.Series) -> float:
    """The mean of log-volumes; -inf when any is -inf (a zero volume is not averaged away)."""
    arr = values.to_numpy(dtype=float)
    return float(arr.mean()) if arr.size else math.nan


def size_points(volume: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, cutoff, landscape_size, m, train_size): log-volume across seeds.

    Columns ``mean`` (-inf where any seed's volume is zero), ``low``/``high`` (min and max,
    NaN where any seed is -inf), ``n`` (runs) and ``n_zero`` (runs with zero volume).
    """
    keys = ["condition", "cutoff", "landscape_size", "m", "train_size"]
    rows = []
    for values, group in volume.groupby(keys, sort=False):
        lv = group["log_volume"].to_numpy(dtype=float)
        zero = int(np.isneginf(lv).sum())
        rows.append({**dict(zip(keys, values)), "mean": _mean_with_zero(group["log_volume"]),
                     "low": float(lv.min()) if not zero else math.nan,
                     "high": float(lv.max()) if not zero else math.nan,
                     "n": len(lv), "n_zero": zero})
    return pd.DataFrame(rows, columns=[*keys, "mean", "low", "high", "n", "n_zero"])


def own_landscape(volume: pd.DataFrame) -> pd.DataFrame:
    """The rows where the landscape is the model's own training set (s = train_size)."""
    return volume[volume["landscape_size"] == volume["train_size"]]


def headline_landscape(volume: pd.DataFrame) -> pd.DataFrame:
    """The rows of each model's headline landscape (``headline`` in volume.csv); tables
    written before that column existed: the model's own training set."""
    if "headline" in volume:
        return volume[volume["headline"].astype(bool)]
    return own_landscape(volume)


def _tag(cutoff: float) -> str:
    return f"c{cutoff:g}"


def model_table(results: VolumeResults) -> pd.DataFrame:
    """One row per trained model (run_id, m): test metrics, headline-landscape log-volume
    per cutoff (``log_volume_c<cutoff>``), the own-landscape one where it differs
    (``log_volume_own_c<cutoff>``, poison), uncrossed radii over every cutoff and landscape
    (``n_uncrossed`` of ``n_radii``), cutoff size per cutoff (``cutoff_size_c<cutoff>``)."""
    keys = ["run_id", "condition", "m", "train_size"]
    frames = [results.tests[[*keys, "test_acc", "test_loss"]]]
    head, own = headline_landscape(results.volume), own_landscape(results.volume)
    differs = len(head) and not head.index.equals(own.index)
    for rows, prefix in ((head, "log_volume_"), (own if differs else head.iloc[:0],
                                                  "log_volume_own_")):
        if rows.empty:
            continue
        wide = rows.set_index([*keys, "cutoff"])["log_volume"].unstack("cutoff")
        wide.columns = [f"{prefix}{_tag(c)}" for c in wide.columns]
        frames.append(wide.reset_index())
    if not results.volume.empty:
        radii = results.volume.groupby(keys)[["n_uncrossed", "n_directions"]].sum()
        frames.append(radii.rename(columns={"n_directions": "n_radii"}).reset_index())
    if not results.cutoffs.empty:
        wide = results.cutoffs.set_index([*keys, "cutoff"])["cutoff_size"].unstack("cutoff")
        wide.columns = [f"cutoff_size_{_tag(c)}" for c in wide.columns]
        frames.append(wide.reset_index())
    table = frames[0]
    for other in frames[1:]:
        table = table.merge(other, on=keys, how="outer")
    order = {c: i for i, c in enumerate(dict.fromkeys(results.tests["condition"]))}
    return table.sort_values(["condition", "m", "run_id"], ignore_index=True,
                             key=lambda c: c.map(order) if c.name == "condition" else c)


def summary_table(models: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, m): ``n`` models and mean/std (ddof=1) of each column of
    :func:`model_table` across seeds, with ``_count`` (models that have the value: a run
    missing a stage's file has none); log-volumes also ``_zero`` (models with zero
    volume; the mean is then -inf); cutoff sizes ``_crossed`` instead of ``_count``
    (models whose loss curve crosses; the mean is over those, NaN when none does)."""
    metrics = [c for c in models.columns
               if c not in ("run_id", "condition", "m", "train_size")]
    rows = []
    for (condition, m), group in models.groupby(["condition", "m"], sort=False):
        row: dict[str, Any] = {"condition": condition, "m": m,
                               "train_size": int(group["train_size"].iloc[0]),
                               "n": len(group)}
        for metric in metrics:
            values = group[metric].astype(float)
            row[f"{metric}_mean"] = values.mean()
            with np.errstate(invalid="ignore"):  # -inf in a log-volume: std NaN
                row[f"{metric}_std"] = values.std()
            if metric.startswith("cutoff_size_"):
                row[f"{metric}_crossed"] = int(values.notna().sum())
                continue
            row[f"{metric}_count"] = int(values.notna().sum())
            if metric.startswith("log_volume_"):
                row[f"{metric}_zero"] = int(np.isneginf(values).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def mean_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, m, s): the cumulative mean loss averaged across seeds (over the
    sizes every run of the condition has)."""
    if curves.empty:
        return curves
    keys = ["condition", "m", "train_size", "s"]
    mean = curves.groupby(keys, sort=False)["loss"].agg(["mean", "count"]).reset_index()
    runs = curves.groupby(["condition", "m"])["run_id"].nunique().rename("runs")
    mean = mean.merge(runs.reset_index(), on=["condition", "m"])
    mean = mean[mean["count"] == mean["runs"]]
    return mean.rename(columns={"mean": "loss"})[keys + ["loss"]]


def cutoff_markers(cutoffs: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, m, cutoff): mean cutoff size over the runs that cross, and counts."""
    if cutoffs.empty:
        return pd.DataFrame(columns=["condition", "m", "cutoff", "cutoff_size", "crossed",
                                     "n"])
    grouped = cutoffs.groupby(["condition", "m", "cutoff"], sort=False)["cutoff_size"]
    out = grouped.agg(cutoff_size="mean", crossed="count", n="size").reset_index()
    return out


# --------------------------------------------------------------------------- findings


def _g(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if np.isneginf(value):
        return "-inf (zero volume)"
    return f"{value:.{digits}g}"


def _pm(values: np.ndarray) -> str:
    """``mean ± std`` of log-volumes (mean alone for one value; -inf kept)."""
    mean = float(values.mean())
    if values.size < 2 or not np.isfinite(values).all():
        return _g(mean)
    return f"{_g(mean)} ± {_g(float(values.std(ddof=1)), 3)}"


def _lead(condition: str, n_conditions: int, text: str) -> str:
    """``condition: text`` when there are several conditions, else ``Text``."""
    return f"{condition}: {text}" if n_conditions > 1 else text[:1].upper() + text[1:]


def trend_findings(models: pd.DataFrame, cutoff: float, n_conditions: int,
                   poison: frozenset[str] = frozenset()) -> list[str]:
    """From the fewest to the most samples: headline-landscape log-volume, per-seed signs.

    ``poison``: the conditions whose added samples are poisoned (their headline is the
    clean base set, and the paper's expectation is said accordingly)."""
    column = f"log_volume_{_tag(cutoff)}"
    out = []
    if column not in models:
        return out
    for condition, group in models.groupby("condition", sort=False):
        ms = sorted(group["m"].unique())
        if len(ms) < 2:
            continue
        first, last = group[group["m"] == ms[0]], group[group["m"] == ms[-1]]
        paired = first[["run_id", column]].merge(last[["run_id", column]], on="run_id",
                                                 suffixes=("_a", "_b"))
        a, b = paired[f"{column}_a"].to_numpy(float), paired[f"{column}_b"].to_numpy(float)
        with np.errstate(invalid="ignore"):
            delta = b - a
        up, down, same = (int((delta > 0).sum()), int((delta < 0).sum()),
                          int((delta == 0).sum()))
        unclear = len(delta) - up - down - same
        change = float(delta.mean()) if np.isfinite(delta).all() else math.nan
        seeds = f"up in {up} of {len(delta)} runs, down in {down}"
        if same:
            seeds += f", unchanged in {same}"
        if unclear:
            seeds += f", undefined (zero volume in both) in {unclear}"
        text = (f"on each model's headline landscape (cutoff "
                f"{cutoff:g}) the log-volume goes from {_pm(a)} with "
                f"{int(first['train_size'].iloc[0])} training samples to {_pm(b)} with "
                f"{int(last['train_size'].iloc[0])}")
        text += (f", a change of {change:+.4g} ({seeds})" if math.isfinite(change)
                 else f" ({seeds})")
        text += ("; the paper reports volumes on the clean base set shrinking as poison is "
                 "added." if condition in poison
                 else "; the paper reports volumes shrinking as the dataset grows.")
        out.append(_lead(condition, n_conditions, text))
    return out


def fixed_landscape_findings(volume: pd.DataFrame, cutoff: float,
                             n_conditions: int) -> list[str]:
    """On the smallest landscape: the model of the most samples against that of the fewest."""
    out = []
    rows = volume[volume["cutoff"] == cutoff]
    for condition, group in rows.groupby("condition", sort=False):
        ms = sorted(group["m"].unique())
        size = group["landscape_size"].min()
        here = group[group["landscape_size"] == size]
        a = here[here["m"] == ms[0]].set_index("run_id")["log_volume"]
        b = here[here["m"] == ms[-1]].set_index("run_id")["log_volume"]
        pair = pd.concat([a, b], axis=1, join="inner").to_numpy(float)
        if len(ms) < 2 or not len(pair):
            continue
        with np.errstate(invalid="ignore"):
            smaller = int((pair[:, 1] < pair[:, 0]).sum())
        out.append(_lead(condition, n_conditions, (
            f"on the smallest landscape ({int(size)} samples, cutoff {cutoff:g}) the model "
            f"trained on the most samples has log-volume {_pm(pair[:, 1])}, the one trained "
            f"on the fewest {_pm(pair[:, 0])} (smaller in {smaller} of {len(pair)} runs; the "
            f"paper finds minima of larger datasets small in small-data landscapes).")))
    return out


def correlation_findings(models: pd.DataFrame, cutoff: float,
                         n_conditions: int) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Spearman rho of headline-landscape log-volume with test accuracy and test loss.

    Returns the sentences and, per condition, the figure notes (metric -> text).
    """
    column = f"log_volume_{_tag(cutoff)}"
    out: list[str] = []
    notes: dict[str, dict[str, str]] = {}
    if column not in models:
        return out, notes
    for condition, group in models.groupby("condition", sort=False):
        finite = group[np.isfinite(group[column].astype(float))]
        dropped = len(group) - len(finite)
        parts, notes[condition] = [], {}
        for metric, name in (("test_acc", "test accuracy"), ("test_loss", "test loss")):
            rho, p = spearman(finite[column].to_numpy(float), finite[metric].to_numpy(float))
            if math.isnan(rho):
                parts.append(f"with {name} undefined (fewer than 3 models or constant values)")
                notes[condition][metric] = "Spearman $\\rho$ undefined"
            else:
                parts.append(f"with {name} rho = {rho:+.2f} (p = {p:.2g})")
                notes[condition][metric] = f"Spearman $\\rho$ = {rho:+.2f}"
        extra = f"; {dropped} model(s) with zero volume left out" if dropped else ""
        out.append(_lead(condition, n_conditions, (
            f"across {len(finite)} trained models (runs x m), the Spearman correlation of the "
            f"headline-landscape log-volume (cutoff {cutoff:g}) {' and '.join(parts)}"
            f"{extra}.")))
    return out, notes


def uncrossed_findings(volume: pd.DataFrame, max_coefficient: Any) -> list[str]:
    """How many radii never reached their cutoff in range (their volumes: lower bounds)."""
    if volume.empty:
        return []
    total = int(volume["n_directions"].sum())
    uncrossed = int(volume["n_uncrossed"].sum())
    where = f" within max_coefficient={max_coefficient}" if max_coefficient is not None else ""
    if not uncrossed:
        return [f"Every one of the {total} radii (directions x cutoffs x landscapes x "
                f"models) reached its cutoff{where}: no volume is a lower bound."]
    bounds = int((volume["n_uncrossed"] > 0).sum())
    per_cutoff = volume.groupby("cutoff")[["n_uncrossed", "n_directions"]].sum()
    detail = ", ".join(f"cutoff {c:g}: {int(r.n_uncrossed)} of {int(r.n_directions)}"
                       for c, r in per_cutoff.iterrows())
    return [f"{uncrossed} of {total} radii never reached their cutoff{where} ({detail}); "
            f"their radius is the range end, so {bounds} of {len(volume)} volume estimates "
            f"are lower bounds."]


def zero_volume_findings(markers: pd.DataFrame, volume: pd.DataFrame, pool: int | None,
                         n_conditions: int) -> list[str]:
    """Where each model's unperturbed loss stays above each cutoff (volume 0 beyond)."""
    out = []
    for condition, group in markers.groupby("condition", sort=False):
        parts = []
        for cutoff, rows in group.groupby("cutoff", sort=True):
            items = []
            for _, r in rows.sort_values("m").iterrows():
                if r["crossed"]:
                    items.append(f"m={int(r['m'])} from s = {r['cutoff_size']:.4g} "
                                 f"(mean; crosses in {int(r['crossed'])} of {int(r['n'])} runs)")
                else:
                    items.append(f"m={int(r['m'])} never")
            parts.append(f"cutoff {cutoff:g}: " + ", ".join(items))
        pool_text = f" pool of {pool} samples" if pool else " pool"
        out.append(_lead(condition, n_conditions, (
            f"landscape size where the volume drops to zero (the unperturbed model's "
            f"cumulative mean loss stays above the cutoff from there on; 'never': not within the"
            f"{pool_text}): " + "; ".join(parts) + ".")))
    if not volume.empty:
        zero = volume[np.isneginf(volume["log_volume"].astype(float))]
        if len(zero):
            out.append(f"{len(zero)} of {len(volume)} measured volumes are zero (log-volume "
                       f"-inf); the smallest landscape with one has "
                       f"{int(zero['landscape_size'].min())} samples.")
        else:
            out.append(f"None of the {len(volume)} measured volumes is zero: every model is "
                       f"below every cutoff on every landscape measured.")
    return out


def summary_sentences(summary: pd.DataFrame, cutoff: float, n_conditions: int) -> list[str]:
    """One sentence per condition: per model, test accuracy and headline log-volume."""
    column = f"log_volume_{_tag(cutoff)}_mean"
    out = []
    for condition, rows in summary.groupby("condition", sort=False):
        items = []
        for _, r in rows.sort_values("m").iterrows():
            item = f"m={int(r['m'])} ({int(r['train_size'])} samples, n={int(r['n'])}): test acc "
            item += f"{_g(r.get('test_acc_mean', math.nan), 3)}"
            if column in r:
                item += f", log-volume {_g(r[column])}"
            items.append(item)
        out.append(_lead(condition, n_conditions, (
            f"per model, mean across seeds (cutoff {cutoff:g}; full table: {SUMMARY_CSV}, "
            f"tables/{SUMMARY_TEX}.tex): " + "; ".join(items) + ".")))
    return out


def _config_value(runs: pd.DataFrame, key: str) -> Any:
    if key not in runs:
        return None
    values = runs[key].astype(str).unique()
    return values[0] if len(values) == 1 else "/".join(sorted(values))


def findings(data: AnalysisData) -> list[str]:
    """Volume trend with data, seed agreement, correlations, lower bounds, zero volumes."""
    results = collect(data)
    out: list[str] = []
    if results.volume.empty and results.tests.empty:
        out.append("No run has its volume or test tables (run the volume and test stages: "
                   "sweeplab volume run CONFIG).")
    models = model_table(results) if not results.tests.empty else pd.DataFrame()
    n_cond = data.finals["condition"].nunique()
    cutoff = float(results.volume["cutoff"].min()) if not results.volume.empty else None
    if cutoff is not None and not models.empty:
        poison = frozenset(
            cond for rid, cond in run_conditions(data.finals).items()
            if "category" in data.runs
            and (data.runs.loc[data.runs["run_id"].astype(str) == rid, "category"]
                 == "poison").any())
        out += trend_findings(models, cutoff, n_cond, poison)
        out += fixed_landscape_findings(results.volume, cutoff, n_cond)
        out += correlation_findings(models, cutoff, n_cond)[0]
    out += uncrossed_findings(results.volume, _config_value(data.runs, "max_coefficient"))
    pool = int(results.curves["s"].max()) if not results.curves.empty else None
    out += zero_volume_findings(cutoff_markers(results.cutoffs), results.volume, pool, n_cond)
    if cutoff is not None and not models.empty:
        out += summary_sentences(summary_table(models), cutoff, n_cond)
    if results.missing:
        runs = sorted({rid for rid, _ in results.missing})
        files = sorted({name for _, name in results.missing})
        out.append(f"{len(runs)} run(s) lack {', '.join(files)} (stages not run) and are "
                   f"missing from the numbers that need them.")
    if data.failed:
        out.append(f"{data.failed} run(s) failed and are excluded from every number above.")
    return out


# --------------------------------------------------------------------------- figures


def summary_columns(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """(column, header) pairs of the per-model table, those the summary has."""
    columns = [("condition", "condition"), ("m", "m"), ("train_size", "train size"),
               ("n", "n"), ("test_acc", "test acc"), ("test_loss", "test loss")]
    for prefix, head in (("log_volume_c", "log-vol"), ("log_volume_own_c", "own log-vol")):
        for column in summary.columns:
            if column.startswith(prefix) and column.endswith("_mean"):
                name = column.removesuffix("_mean")
                columns.append((name, f"{head} @{name.removeprefix(prefix)}"))
    if "n_uncrossed_mean" in summary:
        columns.append(("n_uncrossed", "uncrossed radii"))
    for column in summary.columns:
        if column.startswith("cutoff_size_c") and column.endswith("_mean"):
            name = column.removesuffix("_mean")
            columns.append((name, f"cutoff size @{name.removeprefix('cutoff_size_c')}"))
    return [(c, h) for c, h in columns if c in summary or f"{c}_mean" in summary]


def write_summary(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """``volume_summary.csv`` and ``tables/volume_summary.tex`` (mean ± std per model)."""
    csv_path = out_dir / SUMMARY_CSV
    atomic_write_text(csv_path, summary.to_csv(index=False))
    latex = to_latex(summary, summary_columns(summary), label=f"tab:{SUMMARY_TEX}", caption=(
        "Per model (m added samples), mean $\\pm$ std across seeds: test accuracy and "
        "loss, log-volume on the model's headline landscape per loss cutoff (poison: the "
        "clean base set, own: the poisoned training set; $-\\infty$: zero "
        "volume in some seed), radii that never reached their cutoff (over all cutoffs and "
        "landscapes), landscape size where the volume drops to zero (-- : never in the "
        "pool)"))
    latex = latex.replace("$-inf", "$-\\infty")
    tex_path = out_dir / "tables" / f"{SUMMARY_TEX}.tex"
    tex_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(tex_path, latex)
    return [csv_path, tex_path]


def report_tables(data: AnalysisData, out_dir: Path) -> list[ReportTable]:
    """The per-model table in the report, and as volume_summary.csv / .tex; the table of
    log-volume and model ranking against the number of directions (:mod:`.by_k`)."""
    results = collect(data)
    by_k = k_report(data, run_conditions(data.finals), out_dir)
    if results.tests.empty:
        return by_k
    summary = summary_table(model_table(results))
    write_summary(summary, out_dir)
    columns = summary_columns(summary)
    rows = []
    for _, row in summary.iterrows():
        cells = []
        for column, _ in columns:
            if f"{column}_mean" in summary:
                cells.append(fmt_stat(row[f"{column}_mean"], row[f"{column}_std"]))
            else:
                cells.append(str(row[column]))
        rows.append(tuple(cells))
    return [ReportTable(
        tuple(h for _, h in columns), tuple(rows),
        f"Per model, mean ± std across seeds (LaTeX: tables/{SUMMARY_TEX}.tex; "
        f"CSV: {SUMMARY_CSV}): log-volume on the model's headline landscape per cutoff "
        "(poison: the clean base set; own: its poisoned training set) "
        "(-inf: zero volume in some seed), radii that never reached their cutoff, and the "
        "landscape size where the volume drops to zero"), *by_k]


def _png(paths: list[Path], figs: Path) -> str:
    (png,) = [p for p in paths if p.suffix == ".png"]
    return png.relative_to(figs.parent).as_posix()


def figures(data: AnalysisData, figs: Path) -> list[tuple[str, str]]:
    """The three figures of the study."""
    results = collect(data)
    out: list[tuple[str, str]] = []
    n_cond = data.finals["condition"].nunique()
    models = model_table(results) if not results.tests.empty else pd.DataFrame()
    if not results.volume.empty:
        points = size_points(results.volume)
        zeros = int((~np.isfinite(points["mean"])).sum())
        paths = plots.plot_log_volume_vs_size(points, figs / "log_volume_vs_size")
        zero_text = (f"; {zeros} point(s) with zero volume in some seed (log-volume -inf) "
                     "are hollow triangles at the foot of their panel" if zeros
                     else "; no volume is zero")
        out.append((_png(paths, figs),
                    "Log-volume of each model's minimum against its training-set size, one "
                    "line per landscape size (the first s pool samples), one panel per loss "
                    "cutoff; mean across seeds, band: min-max across seeds; ringed: the "
                    f"model's own landscape{zero_text}"))
    if not results.curves.empty:
        markers = cutoff_markers(results.cutoffs)
        cutoffs = sorted(set(results.cutoffs["cutoff"])) if not results.cutoffs.empty else []
        paths = plots.plot_loss_curves(mean_curves(results.curves), markers, cutoffs,
                                       figs / "loss_curves")
        crossed = int(markers["crossed"].astype(bool).sum()) if not markers.empty else 0
        note = ("" if crossed else "; no curve crosses a cutoff within the pool, so no "
                "landscape in it gives zero volume")
        out.append((_png(paths, figs),
                    "Cumulative mean loss of each unperturbed model over the first s pool "
                    "samples (mean across seeds), dashed: the loss cutoffs, dotted: the size "
                    "from which the curve stays above a cutoff (mean over the seeds that "
                    f"cross; the volume is zero from there on), ring: the training-set size"
                    f"{note}"))
    cutoff = float(results.volume["cutoff"].min()) if not results.volume.empty else None
    column = f"log_volume_{_tag(cutoff)}" if cutoff is not None else None
    if column and not models.empty and column in models:
        finite = models[np.isfinite(models[column].astype(float))]
        if not finite.empty:
            _, notes = correlation_findings(models, cutoff, n_cond)
            panel_notes = ({k: v for k, v in next(iter(notes.values())).items()}
                           if len(notes) == 1 else None)
            paths = plots.plot_volume_vs_test(
                finite.rename(columns={column: "log_volume"}), figs / "volume_vs_test",
                notes=panel_notes,
                xlabel=f"log-volume (headline landscape, cutoff {cutoff:g})")
            left = len(models) - len(finite)
            out.append((_png(paths, figs),
                        "Test accuracy (left) and test loss (right) against the log-volume "
                        f"on the model's headline landscape (poison: the clean base set; "
                        f"else its own training set) at cutoff {cutoff:g}; one point per "
                        "trained model (run, m), colour: m"
                        + (f"; {left} model(s) with zero volume not shown" if left else "")))
    return out


def reproduction(data: AnalysisData) -> dict[str, Any]:
    """The paper's claims measured from these runs (:mod:`.reproduction`, imported here
    late: it reads this module's tables)."""
    from sweeplab.studies.volume.reproduction import measure

    return measure(data)


ANALYSIS = StudyAnalysis(
    group_keys=GROUP_KEYS, final_metrics=FINAL_METRICS, tables=TABLES,
    figures=figures, findings=findings, report_tables=report_tables,
    paper_values=Path(__file__).with_name("paper_values.yaml"), reproduction=reproduction,
)
"""``minima-volume``'s analysis (named by the study's registration, ``analysis=``)."""
