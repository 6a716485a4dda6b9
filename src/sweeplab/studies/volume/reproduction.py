"""The minima-volume study's measure of the paper's claims (``paper_values.yaml``).

Each claim of Fan, Sandlund & Ko (2025, arXiv 2511.04808) on poisoned data is measured
from the ``poison`` runs analysed, on the clean base landscape (the headline landscape
of a poison run), at the loss cutoff the authors report (0.1) when the runs have it,
else at their first cutoff (said in the row). Per run, over its models (one per amount
of poison m):

- ``poison_volume_rank``: Spearman rho of m against the log-volume, mean over runs;
- ``poison_volume_drop_per_param``: (log V at the largest m - log V at the smallest m)
  / n_params, mean over runs;
- ``volume_orders_test_loss``: Spearman rho of log-volume against test loss, mean over
  runs;
- ``poison_test_acc_drop``: test accuracy at the largest m minus at the smallest, mean
  over runs.

Models whose log-volume is not finite (zero volume, or no direction crossed under
``uncrossed: drop``) are left out of a run's correlation; a claim no run can measure is
None ("not run"). The verdicts come from :mod:`sweeplab.analysis.reproduction`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.analysis.reproduction import Measured
from sweeplab.analysis.spec import AnalysisData
from sweeplab.studies.volume.analysis import collect, headline_landscape
from sweeplab.studies.volume.stats import spearman

PAPER_VALUES = Path(__file__).with_name("paper_values.yaml")
PAPER_CUTOFF = 0.1
"""The loss cutoff of the authors' poison results."""
CLAIMS = ("poison_volume_rank", "poison_volume_drop_per_param", "volume_orders_test_loss",
          "poison_test_acc_drop")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return spearman(x, y)[0]


def _scale(runs: pd.DataFrame, cutoff: float, n_params: int | None) -> str:
    """What ran, in words: dataset, sizes, model, directions, cutoff."""
    def one(key: str) -> str:
        values = sorted(runs[key].astype(str).unique()) if key in runs else ["?"]
        # a tuple or list cell "(0, 10, 50)" reads "0, 10, 50"
        return "/".join(v.strip("()[]").rstrip(",") for v in values)

    arch = one("arch")
    model = f"MLP hidden {one('hidden')}" if arch == "mlp" else f"{arch} {one('channels')}"
    params = f" ({n_params:,} parameters)" if n_params else ""
    return (f"{one('dataset')}, {one('base_size')} + {{{one('extra_sizes')}}} poison, {model}"
            f"{params}, {one('epochs')} epochs, K = {one('n_directions')}, "
            f"{one('direction_scaling') if 'direction_scaling' in runs else 'li'} directions, "
            f"cutoff {cutoff:g}")


def per_run(data: AnalysisData) -> tuple[pd.DataFrame, float | None, int | None]:
    """One row per poison run: the four quantities above; the cutoff used; n_params."""
    columns = ["run_id", *CLAIMS]
    runs = data.runs
    if "category" not in runs or not (runs["category"] == "poison").any():
        return pd.DataFrame(columns=columns), None, None
    poison_ids = set(runs.loc[runs["category"] == "poison", "run_id"].astype(str))
    results = collect(data)
    volume = results.volume[results.volume["run_id"].isin(poison_ids)]
    tests = results.tests[results.tests["run_id"].isin(poison_ids)]
    if volume.empty:
        return pd.DataFrame(columns=columns), None, None
    cutoffs = sorted(set(volume["cutoff"].astype(float)))
    cutoff = PAPER_CUTOFF if PAPER_CUTOFF in cutoffs else cutoffs[0]
    head = headline_landscape(volume)
    head = head[head["cutoff"] == cutoff]
    n_params = int(volume["n_params"].iloc[0]) if "n_params" in volume else None
    rows = []
    for run_id, group in head.groupby("run_id", sort=True):
        models = group[["m", "log_volume"]].merge(
            tests[tests["run_id"] == run_id][["m", "test_loss", "test_acc"]], on="m",
            how="left").sort_values("m")
        finite = models[np.isfinite(models["log_volume"].astype(float))]
        lv = finite["log_volume"].to_numpy(float)
        row: dict[str, Any] = {"run_id": run_id,
                               "poison_volume_rank": _spearman(finite["m"].to_numpy(float), lv),
                               "volume_orders_test_loss": _spearman(
                                   lv, finite["test_loss"].to_numpy(float))}
        first, last = models.iloc[0], models.iloc[-1]
        drop = float(last["log_volume"]) - float(first["log_volume"])
        n = int(group["n_params"].iloc[0]) if "n_params" in group else n_params
        row["poison_volume_drop_per_param"] = (drop / n if n and math.isfinite(drop)
                                               and len(models) > 1 else math.nan)
        row["poison_test_acc_drop"] = (float(last["test_acc"]) - float(first["test_acc"])
                                       if len(models) > 1 else math.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns), cutoff, n_params


def measure(data: AnalysisData) -> dict[str, Measured | None]:
    """Claim id -> what the poison runs analysed show (None where none can say)."""
    table, cutoff, n_params = per_run(data)
    if table.empty or cutoff is None:
        return {claim: None for claim in CLAIMS}
    poison_runs = data.runs[data.runs["category"] == "poison"]
    scale = _scale(poison_runs, cutoff, n_params)
    note = "" if cutoff == PAPER_CUTOFF else f"at cutoff {cutoff:g}: the runs lack 0.1"
    out: dict[str, Measured | None] = {}
    for claim in CLAIMS:
        values = table[claim].to_numpy(float)
        values = values[np.isfinite(values)]
        out[claim] = (Measured(float(values.mean()), int(values.size), scale, note=note)
                      if values.size else None)
    return out
