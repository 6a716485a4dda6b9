"""How ``sweeplab analyze`` treats implicit-bias runs: groups, tables, figures, findings.

Conditions are the potential setting (quadratic, lp with its p, hypentropy with its
beta) x depth x dataset x digit pair x PCA; seeds are replicates. Findings are sentences
computed from the aggregated numbers, and say when the 95% intervals do not separate two
baselines rather than naming a winner the data do not support.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.analysis.spec import AnalysisData, StudyAnalysis, TableSpec
from sweeplab.studies.implicit_bias import plots

BASELINES = {
    "svm": "the l2 SVM",
    "logreg": "logistic regression",
    "lp_max_margin": "the lp max-margin direction",
    "linear_md": "linear MD (L = 1)",
}

CURVE_METRICS = (
    "angle_svm",
    "angle_logreg",
    "angle_lp_max_margin",
    "angle_linear_md",
    "margin_l2",
    "margin_p",
    "margin_l2_ratio",
    "margin_p_ratio",
    "balance_drift_max",
    "align_min",
    "rank1_min",
)
"""Metrics logged every epoch that the analysis draws over training."""
FINAL_METRICS = CURVE_METRICS + ("norm_1", "loss", "train_acc", "test_acc")
"""Metrics aggregated at the end of training."""

TABLES = (
    TableSpec(
        "final_angles",
        "Final angle (degrees) between the deep predictor and each baseline",
        (
            ("angle_svm", "vs l2 SVM"),
            ("angle_logreg", "vs logreg"),
            ("angle_linear_md", "vs linear MD"),
            ("angle_lp_max_margin", "vs lp max-margin"),
        ),
    ),
    TableSpec(
        "final_margins",
        "Final normalized margins and their ratio to the optimum",
        (
            ("margin_l2", "gamma_2"),
            ("margin_l2_ratio", "gamma_2/gamma_2*"),
            ("margin_p", "gamma_p"),
            ("margin_p_ratio", "gamma_p/gamma_p*"),
        ),
    ),
    TableSpec(
        "balance_alignment",
        "Norm balance drift and layer alignment at the end",
        (
            ("balance_drift_max", "balance drift"),
            ("align_min", "alignment"),
            ("rank1_min", "rank-one ratio"),
        ),
    ),
    TableSpec(
        "accuracy",
        "Final loss and accuracy",
        (("loss", "loss"), ("train_acc", "train acc"), ("test_acc", "test acc")),
    ),
)


def setting_of(potential: Any, p: Any, beta: Any = None) -> str:
    """quadratic | lp p=1.5 | hypentropy beta=1: the potential with the parameter it uses."""
    if potential == "lp":
        return f"lp p={float(p):g}"
    if potential == "hypentropy":
        return f"hypentropy beta={float(beta):g}" if beta is not None else "hypentropy"
    return str(potential)


def prepare(runs: pd.DataFrame) -> pd.DataFrame:
    """Add the ``setting`` column (potential and the parameter it actually uses)."""
    beta = runs["beta"] if "beta" in runs else pd.Series([None] * len(runs), index=runs.index)
    runs["setting"] = [
        setting_of(pot, p, b) for pot, p, b in zip(runs["potential"], runs["p"], beta)
    ]
    return runs


def label(row: Any, varying: list[str]) -> str:
    """``lp p=1.5, L=2`` plus whichever of dataset, digits, pca vary."""
    parts = [str(row["setting"])] if "setting" in row else []
    parts += [
        f"{k}={_show(row[k])}"
        for k in varying
        if k not in ("setting", "potential", "p", "beta") and k in row
    ]
    return ", ".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " vs ".join(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _ok(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def closest_baseline_findings(finals: pd.DataFrame) -> list[str]:
    """Per condition, the baseline the deep predictor ends closest to, with its interval."""
    out = []
    for _, row in finals.iterrows():
        angles = sorted(
            (row[f"angle_{b}_mean"], b)
            for b in BASELINES
            if f"angle_{b}_mean" in row and _ok(row[f"angle_{b}_mean"])
        )
        if not angles:
            continue
        best_val, best = angles[0]
        text = f"{row['condition']}: ends closest to {BASELINES[best]} ({best_val:.2f} degrees"
        text += f", n={int(row['count'])})"
        if len(angles) > 1:
            second_val, second = angles[1]
            hi, lo = row.get(f"angle_{best}_ci_high"), row.get(f"angle_{second}_ci_low")
            if _ok(hi) and _ok(lo) and hi >= lo:
                text += (
                    f"; the 95% intervals overlap with {BASELINES[second]} "
                    f"({second_val:.2f} degrees), so these seeds do not separate the two"
                )
            elif _ok(hi) and _ok(lo):
                text += f", clearly ahead of {BASELINES[second]} ({second_val:.2f} degrees)"
            else:
                text += f"; next is {BASELINES[second]} ({second_val:.2f} degrees)"
        out.append(text + ".")
    return out


def findings(data: AnalysisData) -> list[str]:
    """Key findings: closest baselines, alignment, balance, margins, failures."""
    finals = data.finals
    out = closest_baseline_findings(finals)
    if "align_min_mean" in finals and "L" in finals:
        deep = finals[finals["L"] >= 2]
        values = deep["align_min_mean"].dropna()
        if len(values):
            worst = deep.loc[values.idxmin()]
            out.append(
                f"Layer alignment |u_k^T v_(k+1)| reaches >= 0.99 in {int((values >= 0.99).sum())} "
                f"of {len(values)} conditions with L >= 2; lowest {worst['align_min_mean']:.3f} "
                f"({worst['condition']})."
            )
    if "balance_drift_max_mean" in finals and finals["balance_drift_max_mean"].notna().any():
        drift = finals["balance_drift_max_mean"].dropna()
        top = finals.loc[drift.idxmax()]
        out.append(
            f"Norm balance N(W_k) - N(W_k+1) drifts from its initial value by at most "
            f"{top['balance_drift_max_mean']:.3g} on average ({top['condition']}); the theory "
            f"conserves it under mirror flow, so this is the step size's O(lr) effect."
        )
    if "margin_p_ratio_mean" in finals:
        ratios = finals.dropna(subset=["margin_p_ratio_mean"])
        if len(ratios):
            best = ratios.loc[ratios["margin_p_ratio_mean"].idxmax()]
            worst = ratios.loc[ratios["margin_p_ratio_mean"].idxmin()]
            out.append(
                f"The deep predictor's lp margin reaches {worst['margin_p_ratio_mean']:.3f} to "
                f"{best['margin_p_ratio_mean']:.3f} of the lp max-margin optimum "
                f"(lowest: {worst['condition']}; highest: {best['condition']})."
            )
    if data.failed:
        out.append(f"{data.failed} run(s) failed and are excluded from every number above.")
    return out


def figures(data: AnalysisData, figs: Path) -> list[tuple[str, str]]:
    """Angles, margins, balance over epochs; heatmaps; boxplots; 2-D decision boundaries."""
    curve_figures = (
        (plots.plot_angles_over_time, "angles",
         "Angle between the deep predictor and each baseline over training "
         "(mean +- std across seeds)"),
        (plots.plot_margins_over_time, "margins",
         "Normalized margins over training (mean +- std across seeds)"),
        (plots.plot_norm_balance, "norm_balance",
         "Drift of the norm balance from initialization (mean +- std)"),
    )
    drawn: list[tuple[list[Path], str]] = []
    if not data.curves.empty:
        drawn += [(fn(data.curves, figs / name), caption) for fn, name, caption in curve_figures]
    drawn.append((plots.plot_heatmaps(data.finals, figs / "heatmap"),
                  "Norm balance and alignment over potential x depth (means across seeds)"))
    drawn.append((plots.plot_final_boxplots(data.runs, figs / "boxplot"),
                  "Final angles and margins across seeds"))
    two_d = [
        Path(d)
        for d, dim, ds in zip(
            data.runs["run_dir"], data.runs.get("input_dim", []), data.runs.get("dataset", [])
        )
        if ds == "synthetic" and dim == 2 and (Path(d) / "directions.json").exists()
    ]
    if two_d:
        drawn.append(
            (
                plots.plot_decision_boundaries(two_d, figs / "decision_boundaries"),
                "Decision boundaries of 2-D synthetic runs, baselines drawn",
            )
        )
    out = []
    for paths, caption in drawn:
        for path in paths:
            if path.suffix == ".png":
                name = path.stem.replace("_", " ")
                out.append((path.relative_to(figs.parent).as_posix(), f"{caption} [{name}]"))
    return out


CONDITION_KEYS = ("potential", "p", "L", "dataset", "digits", "pca")
"""What makes a condition of this study; the seed (and nothing else) varies within one."""

ANALYSIS = StudyAnalysis(
    group_keys=("setting", *CONDITION_KEYS),
    final_metrics=FINAL_METRICS,
    curve_metrics=CURVE_METRICS,
    tables=TABLES,
    prepare=prepare,
    label=label,
    figures=figures,
    findings=findings,
)
