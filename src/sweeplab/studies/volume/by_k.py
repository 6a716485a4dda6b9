"""How the log-volume and the ranking of models move with the number of directions K.

With n parameters, ``log V ≈ log mean_i r_i^n`` is dominated by the largest radii among
the K directions (``n · log r`` for n ~ 1e5), so a small K biases it low and can reorder
models whose volumes are close (Fan, Sandlund & Ko 2025, arXiv 2511.04808, Sec. 3; the
authors use K = 1,000). Direction i is the same whatever K (seed ``perturbation_seed +
i``), so the volume stage's ``volume_by_k.csv`` holds the estimate from the first k
directions for a few k below K, a nested subsample at no extra cost. This module sets
them side by side: per (condition, k), on the headline landscape at the first cutoff,
the ranking of the models by mean log-volume, in how many runs the ranking of the models
equals the one with all K directions, the mean Spearman correlation with it, and how far
the log-volume moves.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sweeplab.analysis.spec import AnalysisData, ReportTable
from sweeplab.core.experiment import atomic_write_text
from sweeplab.studies.volume.stats import spearman

BY_K_FILE = "volume_by_k.csv"
"""A run's log-volumes from the first k directions (written by the volume stage)."""
K_CSV = "volume_by_k_ranking.csv"
"""The analysis' table, beside the report."""


def collect_by_k(data: AnalysisData, conditions: dict[str, str]) -> pd.DataFrame:
    """Every run's ``volume_by_k.csv`` stacked, tagged with ``run_id`` and ``condition``;
    headline rows only (``headline`` column), empty when no run has the file."""
    parts = []
    for _, run in data.runs.iterrows():
        path = Path(run["run_dir"]) / BY_K_FILE
        if not path.is_file():
            continue
        frame = pd.read_csv(path)
        frame = frame[frame["headline"].astype(bool)]
        frame.insert(0, "condition", conditions.get(str(run["run_id"]), "all runs"))
        frame.insert(0, "run_id", str(run["run_id"]))
        parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _ranking(values: pd.Series) -> list[int]:
    """Models (m) by decreasing log-volume; ties broken by m."""
    frame = values.reset_index()
    frame.columns = ["m", "v"]
    return [int(m) for m in frame.sort_values(["v", "m"], ascending=[False, True])["m"]]


def k_ranking(by_k: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, cutoff = the first, k): ranking, agreement with the full K, shift.

    Columns: ``condition``, ``cutoff``, ``k``, ``k_full`` (the runs' K), ``ranking``
    (models m by mean log-volume across runs, largest first), ``runs``, ``same_ranking``
    (runs whose ranking of m equals their own ranking at k_full), ``spearman`` (mean
    over runs of the Spearman rho between the log-volumes at k and at k_full),
    ``mean_shift`` (mean over models of log-volume(k) - log-volume(k_full); negative:
    fewer directions see smaller volumes). Models with a non-finite log-volume (zero
    volume, or no direction crossed under ``uncrossed: drop``) are left out of a run.
    """
    columns = ["condition", "cutoff", "k", "k_full", "ranking", "runs", "same_ranking",
               "spearman", "mean_shift"]
    if by_k.empty:
        return pd.DataFrame(columns=columns)
    cutoff = float(by_k["cutoff"].min())
    here = by_k[(by_k["cutoff"] == cutoff) & np.isfinite(by_k["log_volume"].astype(float))]
    rows = []
    for condition, group in here.groupby("condition", sort=False):
        k_full = int(group["k"].max())
        full = group[group["k"] == k_full].set_index(["run_id", "m"])["log_volume"]
        for k in sorted(group["k"].unique()):
            at_k = group[group["k"] == k].set_index(["run_id", "m"])["log_volume"]
            same, rhos, shifts = 0, [], []
            runs = sorted(set(at_k.index.get_level_values(0)))
            for run in runs:
                a, b = at_k.loc[run], full.loc[run]
                common = a.index.intersection(b.index)
                a, b = a.loc[common], b.loc[common]
                same += _ranking(a) == _ranking(b)
                rhos.append(spearman(a.to_numpy(float), b.to_numpy(float))[0])
                shifts.extend((a - b).to_numpy(float))
            mean = at_k.groupby(level="m").mean()
            rows.append({
                "condition": condition, "cutoff": cutoff, "k": int(k), "k_full": k_full,
                "ranking": " > ".join(f"m={m}" for m in _ranking(mean)),
                "runs": len(runs), "same_ranking": int(same),
                "spearman": float(np.nanmean(rhos)) if np.isfinite(rhos).any() else math.nan,
                "mean_shift": float(np.mean(shifts)) if shifts else math.nan,
            })
    return pd.DataFrame(rows, columns=columns)


def k_report(data: AnalysisData, conditions: dict[str, str], out_dir: Path) -> list[ReportTable]:
    """The K table in the report and as ``volume_by_k_ranking.csv``; nothing without data."""
    table = k_ranking(collect_by_k(data, conditions))
    if table.empty:
        return []
    atomic_write_text(out_dir / K_CSV, table.to_csv(index=False))
    rows = tuple(
        (str(r.condition), str(int(r.k)), r.ranking, f"{int(r.same_ranking)} of {int(r.runs)}",
         "n/a" if math.isnan(r.spearman) else f"{r.spearman:+.2f}",
         "n/a" if math.isnan(r.mean_shift) else f"{r.mean_shift:+.4g}")
        for r in table.itertuples())
    cutoff = float(table["cutoff"].iloc[0])
    return [ReportTable(
        ("condition", "k directions", "models by mean log-volume (largest first, ties by m)",
         "runs ranking the models as with all K", "Spearman with all K (mean)",
         "mean log-volume shift vs all K"),
        rows,
        f"The headline log-volume (cutoff {cutoff:g}) from the first k directions, against "
        f"all K of each run (CSV: {K_CSV}): a small K biases log V low (it is dominated "
        "by the largest radii) and can reorder models whose volumes are close")]
