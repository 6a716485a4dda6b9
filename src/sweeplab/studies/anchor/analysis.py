"""How ``sweeplab analyze`` treats the anchor studies (Chen et al. 2025, arXiv 2509.17514).

``anchor-composite`` (``COMPOSITE_ANALYSIS``, also ``ANALYSIS``): on the held-out anchor
pair (4, 3) a model either composes the two anchors (composite solution) or answers as
for (3, 4) (symmetric solution). A model that has not fit its training set (mean train
accuracy below ``claims.FIT_ACC``) says nothing about which solution it prefers: such
conditions are marked "not fit" in the findings, the solutions table and the phase
diagram (hatched), whatever their held-out accuracies. Every run also gets the normalised
``composite_share = composite / (composite + symmetric)`` (NaN where both are 0), which
compares conditions whose held-out accuracies differ in size. Figures: the phase diagram
(composite, symmetric, composite share, train accuracy) over depth x gamma when both vary,
bars per condition when ``model_type`` varies (ablations), the accuracies over epochs.
``inverse-sequence`` (``INVERSE_ANALYSIS``, served by ``analysis_inverse``): train, test
and out-of-distribution accuracy per model, as a table, bars (with the 20% chance level
the paper measures Mamba against, Fig. 9) and curves; findings say where an accuracy's
interval holds chance. Both analyses end their findings with the "paper vs this run"
table of :mod:`.claims`.

Conditions are every varying parameter but the seeds. Findings are sentences computed from
the aggregated numbers; where the 95% t-intervals across seeds overlap they say so rather
than naming a winner the data do not support.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from sweeplab.analysis.aggregate import to_latex
from sweeplab.analysis.spec import AnalysisData, ReportTable, StudyAnalysis, TableSpec
from sweeplab.core.experiment import atomic_write_text
from sweeplab.studies.anchor import plots
from sweeplab.studies.anchor.claims import (
    COMPOSITE_VALUES,
    FIT_ACC,
    INVERSE_VALUES,
    measure_composite,
    measure_inverse,
)
from sweeplab.studies.anchor.tasks import N_KEYS

GROUP_KEYS = (
    "model_type", "n_layers", "gamma", "embedding_fan_in", "conv_init", "d_model", "d_state",
    "expand", "d_conv", "epochs", "lr", "batch_size", "weight_decay", "schedule", "grad_clip",
    "n_train",
)
"""Config keys that define a condition when they vary (seeds are replicates)."""

SHORT = {"n_layers": "L", "gamma": "gamma", "model_type": None}
"""How a key shows in a condition label (None: the value alone)."""

NEITHER = 0.1
"""Below this held-out accuracy a solution counts as not learned."""


INVERSE_CHANCE = 1.0 / N_KEYS
"""Accuracy of a uniform guess among the five keys of the inverse task (20%)."""

COMPOSITE_CURVES = {
    "composite_acc": "held-out pair: composite",
    "symmetric_acc": "held-out pair: symmetric",
    "test_acc": "test accuracy",
    "train_acc": "train accuracy",
}
INVERSE_CURVES = {"train_acc": "train", "test_acc": "test", "ood_acc": "out of distribution"}

COMPOSITE_TABLES = (
    TableSpec(
        "final_metrics",
        "Final metrics of the composite task: held-out pair (4, 3) solved as composite or "
        "symmetric, the composite share composite / (composite + symmetric), test accuracy "
        "on the seen pairs and train accuracy",
        (("composite_acc", "composite acc"), ("symmetric_acc", "symmetric acc"),
         ("composite_share", "composite share"), ("test_acc", "test acc"),
         ("train_acc", "train acc"), ("train_loss", "train loss")),
    ),
)
INVERSE_TABLES = (
    TableSpec(
        "final_metrics",
        "Final metrics of inverse sequence matching: train, test (unseen number sets) and "
        "out-of-distribution (values 101-200) accuracy",
        (("train_acc", "train acc"), ("test_acc", "test acc"), ("ood_acc", "OOD acc"),
         ("train_loss", "train loss")),
    ),
)


def label(row: Any, varying: list[str]) -> str:
    """``mamba_standard, L=2, gamma=0.5``: the model bare, depth as L, other keys k=v."""
    parts = []
    for key in varying:
        if key not in row:
            continue
        short = SHORT.get(key, key)
        value = plots.plotting.show_value(row[key])
        parts.append(value if short is None else f"{short}={value}")
    return ", ".join(parts)


def _ok(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def compare(row: Any, a: str, b: str) -> int | None:
    """1 if ``a`` is clearly above ``b`` (95% intervals disjoint), -1 below, 0 overlap.

    None when an interval is missing (a single seed).
    """
    lo_a, hi_a = row.get(f"{a}_ci_low"), row.get(f"{a}_ci_high")
    lo_b, hi_b = row.get(f"{b}_ci_low"), row.get(f"{b}_ci_high")
    if not all(_ok(v) for v in (lo_a, hi_a, lo_b, hi_b)):
        return None
    if lo_a > hi_b:
        return 1
    if lo_b > hi_a:
        return -1
    return 0


def fits(row: Any) -> bool | None:
    """Whether a condition fits its training set (mean train accuracy >= FIT_ACC);
    None when the row has no train accuracy."""
    train = row.get("train_acc_mean")
    return None if not _ok(train) else bool(train >= FIT_ACC)


def solution_of(row: Any) -> str:
    """composite | symmetric | neither | undecided | not fit: the held-out pair's solution.

    ``not fit``: the condition's training did not fit (:func:`fits`), so its held-out
    accuracies do not show a preferred solution.
    """
    if fits(row) is False:
        return "not fit"
    comp, sym = row["composite_acc_mean"], row["symmetric_acc_mean"]
    if max(comp, sym) < NEITHER:
        return "neither"
    order = compare(row, "composite_acc", "symmetric_acc")
    if order == 1 or (order is None and comp > sym):
        return "composite"
    if order == -1 or (order is None and sym > comp):
        return "symmetric"
    return "undecided"


def _pct(value: float) -> str:
    return "n/a" if not _ok(value) else f"{100 * value:.1f}%"


def composite_share(composite: pd.Series, symmetric: pd.Series) -> pd.Series:
    """composite / (composite + symmetric), elementwise; NaN where both are 0."""
    total = composite + symmetric
    return composite / total.where(total > 0)


def prepare(runs: pd.DataFrame) -> pd.DataFrame:
    """Adds ``final.composite_share`` to every composite-task run (see the docstring)."""
    comp, sym = "final.composite_acc", "final.symmetric_acc"
    if comp in runs and sym in runs:
        runs["final.composite_share"] = composite_share(
            pd.to_numeric(runs[comp], errors="coerce"), pd.to_numeric(runs[sym], errors="coerce"))
    return runs


def composite_sentence(row: Any) -> str:
    """One condition: which solution its held-out pair takes, with the numbers."""
    comp, sym = row["composite_acc_mean"], row["symmetric_acc_mean"]
    numbers = f"composite {_pct(comp)}, symmetric {_pct(sym)}"
    if "train_acc_mean" in row:
        numbers += f", train {_pct(row['train_acc_mean'])}"
    if "test_acc_mean" in row:
        numbers += f", test {_pct(row['test_acc_mean'])}"
    numbers += f", n={int(row['count'])}"
    kind = solution_of(row)
    if kind == "not fit":
        return (f"{row['condition']}: did not fit its training set ({numbers}; fit means "
                f"train >= {_pct(FIT_ACC)}), so its held-out answers do not show which "
                "solution it prefers.")
    if kind == "neither":
        return f"{row['condition']}: learns neither solution of the held-out pair ({numbers})."
    if kind == "undecided":
        return (f"{row['condition']}: the 95% intervals of composite and symmetric accuracy "
                f"overlap ({numbers}), so these seeds do not separate the two solutions.")
    interval = compare(row, "composite_acc", "symmetric_acc")
    note = "" if interval is not None else "; a single seed, no interval"
    return f"{row['condition']}: the {kind} solution dominates ({numbers}{note})."


def phase_findings(finals: pd.DataFrame) -> list[str]:
    """Counts of cells per solution and the trend of composite accuracy along gamma."""
    kinds = finals.apply(solution_of, axis=1)
    counts = kinds.value_counts()
    text = (f"Over the {len(finals)} (depth, gamma) cells: composite dominates in "
            f"{counts.get('composite', 0)}, symmetric in {counts.get('symmetric', 0)}, "
            f"overlapping intervals in {counts.get('undecided', 0)}, neither learned in "
            f"{counts.get('neither', 0)}, training not fit (train < {_pct(FIT_ACC)}) in "
            f"{counts.get('not fit', 0)}.")
    out = [text]
    unfit = finals[kinds == "not fit"]
    if len(unfit):
        cells = ", ".join(f"{r['condition']} ({_pct(r['train_acc_mean'])})"
                          for _, r in unfit.head(12).iterrows())
        more = f" and {len(unfit) - 12} more" if len(unfit) > 12 else ""
        out.append(f"Cells whose training did not fit (train accuracy): {cells}{more}; their "
                   "held-out accuracies say nothing about the preferred solution (hatched "
                   "in the phase diagram).")
    by_gamma = finals.groupby("gamma")[["composite_acc_mean", "symmetric_acc_mean"]].mean()
    if len(by_gamma) >= 2:
        lo, hi = by_gamma.index.min(), by_gamma.index.max()
        out.append(
            f"Averaged over depths, composite accuracy goes from "
            f"{_pct(by_gamma.loc[lo, 'composite_acc_mean'])} at gamma={lo:g} to "
            f"{_pct(by_gamma.loc[hi, 'composite_acc_mean'])} at gamma={hi:g}, symmetric "
            f"accuracy from {_pct(by_gamma.loc[lo, 'symmetric_acc_mean'])} to "
            f"{_pct(by_gamma.loc[hi, 'symmetric_acc_mean'])}."
        )
    return out


def versus_chance(row: Any, metrics: tuple[str, ...] = ("test_acc", "ood_acc")) -> str:
    """``; test at chance, ...``: where a 95% interval holds the 20% of a uniform guess.

    Empty when no interval (a single seed) or every interval lies above chance.
    """
    at_chance = [metric.removesuffix("_acc").replace("ood", "OOD") for metric in metrics
                 if _ok(row.get(f"{metric}_ci_low")) and _ok(row.get(f"{metric}_ci_high"))
                 and row[f"{metric}_ci_low"] <= INVERSE_CHANCE <= row[f"{metric}_ci_high"]]
    if not at_chance:
        return ""
    return f"; {' and '.join(at_chance)} indistinguishable from chance (20%)"


def best_of(finals: pd.DataFrame, metric: str) -> str | None:
    """The condition highest in ``metric``, and whether the runner-up's interval overlaps."""
    ranked = finals.dropna(subset=[f"{metric}_mean"]).sort_values(
        f"{metric}_mean", ascending=False)
    if len(ranked) < 2:
        return None
    first, second = ranked.iloc[0], ranked.iloc[1]
    text = (f"Highest {metric}: {first['condition']} ({_pct(first[f'{metric}_mean'])}) ahead "
            f"of {second['condition']} ({_pct(second[f'{metric}_mean'])})")
    lo, hi = first.get(f"{metric}_ci_low"), second.get(f"{metric}_ci_high")
    if _ok(lo) and _ok(hi):
        if lo > hi:
            return text + "; the 95% intervals are disjoint."
        return text + "; the 95% intervals overlap, so these seeds do not separate them."
    return text + "; no interval (a single seed)."


def findings(data: AnalysisData) -> list[str]:
    """Which solution dominates where (composite task); accuracies per model (inverse)."""
    finals = data.finals
    out: list[str] = []
    if {"composite_acc_mean", "symmetric_acc_mean"} <= set(finals.columns):
        if is_phase_diagram(finals):
            out += phase_findings(finals)
        if len(finals) <= 12:
            out += [composite_sentence(row) for _, row in finals.iterrows()]
    if "ood_acc_mean" in finals:
        for _, row in finals.iterrows():
            out.append(
                f"{row['condition']}: train {_pct(row['train_acc_mean'])}, test "
                f"{_pct(row['test_acc_mean'])}, out of distribution "
                f"{_pct(row['ood_acc_mean'])} (n={int(row['count'])})"
                f"{versus_chance(row)}."
            )
        for metric in ("test_acc", "ood_acc"):
            sentence = best_of(finals, metric)
            if sentence:
                out.append(sentence)
    if data.failed:
        out.append(f"{data.failed} run(s) failed and are excluded from every number above.")
    return out


SOLUTION_COLUMNS = (
    ("train_acc", "train acc"), ("test_acc", "test acc"), ("composite_acc", "composite"),
    ("symmetric_acc", "symmetric"), ("composite_share", "composite share"),
)


def solutions_table(data: AnalysisData, out_dir: Path) -> list[ReportTable]:
    """Per condition: train and seen-pair test accuracy beside both held-out accuracies,
    the composite share and the solution (``not fit`` where training did not fit); also
    written as ``tables/solutions.csv`` and ``tables/solutions.tex``."""
    finals = data.finals
    if not {"composite_acc_mean", "symmetric_acc_mean"} <= set(finals.columns):
        return []
    present = [(m, h) for m, h in SOLUTION_COLUMNS if f"{m}_mean" in finals]
    table = finals[["condition", "count"]].copy()
    for metric, _ in present:
        table[f"{metric}_mean"] = finals[f"{metric}_mean"]
        table[f"{metric}_std"] = finals[f"{metric}_std"]
    table["solution"] = finals.apply(solution_of, axis=1)
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "tables" / "solutions.csv", index=False)
    columns = [("condition", "condition"), ("count", "n"), *present, ("solution", "solution")]
    caption = (f"Solution of the held-out pair (4, 3) per condition, mean $\\pm$ std across "
               f"seeds; not fit: mean train accuracy below {FIT_ACC:g}")
    atomic_write_text(out_dir / "tables" / "solutions.tex",
                      to_latex(table, columns, caption=caption, label="tab:solutions"))
    rows = []
    for _, row in table.iterrows():
        cells = [str(row["condition"]), str(int(row["count"]))]
        cells += [_stat(row[f"{m}_mean"], row[f"{m}_std"]) for m, _ in present]
        rows.append((*cells, row["solution"]))
    header = ("condition", "n", *(h for _, h in present), "solution")
    return [ReportTable(header, tuple(rows), (
        "Solution of the held-out pair (4, 3) per condition (mean ± std across seeds; "
        f"not fit: mean train accuracy below {FIT_ACC:g}, so the held-out accuracies do not "
        "show a preferred solution). CSV: tables/solutions.csv, LaTeX: tables/solutions.tex"))]


def _stat(mean: Any, std: Any) -> str:
    if not _ok(mean):
        return "n/a"
    return f"{mean:.2f}" if not _ok(std) else f"{mean:.2f} ± {std:.2f}"


def is_phase_diagram(finals: pd.DataFrame) -> bool:
    """True when the grid varies both depth and gamma."""
    return all(k in finals and finals[k].astype(str).nunique() > 1 for k in ("n_layers", "gamma"))


def _varies(finals: pd.DataFrame, key: str) -> bool:
    return key in finals and finals[key].astype(str).nunique() > 1


def _captioned(paths: list[Path], figs: Path, caption: str) -> list[tuple[str, str]]:
    return [(p.relative_to(figs.parent).as_posix(), caption) for p in paths
            if p.suffix == ".png"]


def figures(data: AnalysisData, figs: Path) -> list[tuple[str, str]]:
    """Phase diagram (depth x gamma), bars per condition, accuracy curves."""
    finals, out = data.finals, []
    composite = "composite_acc_mean" in finals and "symmetric_acc_mean" in finals
    if composite and is_phase_diagram(finals):
        others = [k for k in data.group_keys if k not in ("n_layers", "gamma")]
        for path, tag in plots.plot_phase_diagrams(finals, figs / "phase_diagram", others,
                                                   fit_acc=FIT_ACC):
            if path.suffix == ".png":
                extra = f" ({tag.replace(',', ', ')})" if tag else ""
                out.append((path.relative_to(figs.parent).as_posix(),
                            "Phase diagram: accuracy of the composite and the symmetric "
                            "solution on the held-out pair, the composite share composite / "
                            "(composite + symmetric) and the train accuracy over depth x "
                            f"gamma, mean across seeds; hatched: training not fit (train "
                            f"accuracy < {FIT_ACC:g}){extra}"))
    if composite and _varies(finals, "model_type"):
        paths = plots.plot_accuracy_bars(
            finals, data.runs, {m: COMPOSITE_CURVES[m] for m in ("composite_acc",
                                                                  "symmetric_acc")},
            figs / "ablation_solutions", "Held-out pair (4, 3) by model")
        out += _captioned(paths, figs, "Ablations: composite and symmetric accuracy per "
                          "model (bars: mean +- std across seeds; dots: seeds)")
    if "ood_acc_mean" in finals:
        paths = plots.plot_accuracy_bars(finals, data.runs, INVERSE_CURVES,
                                         figs / "inverse_accuracy", "Inverse sequence matching",
                                         chance=INVERSE_CHANCE)
        out += _captioned(paths, figs, "Train, test and out-of-distribution accuracy per "
                          "model (bars: mean +- std across seeds; dots: seeds; dashed: "
                          "chance, 20%)")
    if not data.curves.empty:
        metrics = INVERSE_CURVES if "ood_acc_mean" in finals else COMPOSITE_CURVES
        paths = plots.plot_accuracy_curves(data.curves, metrics, figs / "accuracy_curves",
                                           "Accuracy over training")
        out += _captioned(paths, figs, "Accuracies over epochs per condition "
                          "(mean +- std across seeds)")
    return out


def _analysis(curves: dict[str, str], tables: tuple[TableSpec, ...],
              finals: tuple[str, ...], **extra: Any) -> StudyAnalysis:
    return StudyAnalysis(
        group_keys=GROUP_KEYS, final_metrics=finals, curve_metrics=tuple(curves),
        tables=tables, label=label, figures=figures, findings=findings, **extra,
    )


COMPOSITE_ANALYSIS = _analysis(
    COMPOSITE_CURVES, COMPOSITE_TABLES,
    ("train_loss", "train_acc", "test_acc", "composite_acc", "symmetric_acc",
     "composite_share"),
    prepare=prepare, report_tables=solutions_table, paper_values=COMPOSITE_VALUES,
    reproduction=measure_composite,
)
INVERSE_ANALYSIS = _analysis(
    INVERSE_CURVES, INVERSE_TABLES, ("train_loss", "train_acc", "test_acc", "ood_acc"),
    paper_values=INVERSE_VALUES, reproduction=measure_inverse,
)
ANALYSIS = COMPOSITE_ANALYSIS
"""``anchor-composite``'s analysis (``inverse-sequence``: ``analysis_inverse.ANALYSIS``)."""
