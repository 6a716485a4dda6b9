"""``sweeplab analyze``: finished grids -> tables, figures and a report, in one call.

Output folder::

    master.csv        one row per run analysed (parameters, final metrics)
    summary.csv       one row per condition: count, mean, std, min, max, 95% t-interval
    curves.csv        per condition and epoch: mean and std across seeds
    conditions/*.json one file per condition, with its run ids
    tables/*.tex      booktabs tables, ready to \\input
    figs/*.png|pdf    the study's figures
    report.md, report.html
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sweeplab.analysis.aggregate import (
    aggregate_curves,
    aggregate_final,
    condition_label,
    to_latex,
    write_condition_json,
)
from sweeplab.analysis.load import load_metrics, load_runs
from sweeplab.analysis.report import Bullets, Figure, Heading, Paragraph, Report, Table
from sweeplab.analysis.report import write_report as _write_report
from sweeplab.analysis.spec import (
    AnalysisData,
    StudyAnalysis,
    analysis_of,
    find_study,
    generic_analysis,
)
from sweeplab.core.rundir import CONFIG_FILE, atomic_write_text, load_yaml

RUN_COLUMNS = ("run_id", "run_dir", "grid", "study", "state", "duration_s", "config_hash")


@dataclass
class AnalysisOutcome:
    """Where the analysis went and what it covered."""

    output_dir: Path
    report_md: Path
    report_html: Path
    n_runs: int
    n_conditions: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def config_columns(runs: pd.DataFrame) -> list[str]:
    """The runs table's parameter columns (not bookkeeping, not final metrics)."""
    return [c for c in runs.columns if c not in RUN_COLUMNS and not c.startswith("final.")]


def _study_reference(runs: pd.DataFrame, study: str) -> tuple[Any, str | None]:
    """How the runs' study is found: the reference and folder their config.yaml records
    (a user's own study), else its name."""
    for run_dir in runs.loc[runs["study"] == study, "run_dir"] if "study" in runs else ():
        try:
            header = load_yaml(Path(run_dir) / CONFIG_FILE)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(header, dict) and header.get("study_ref") is not None:
            return header["study_ref"], header.get("study_dir") or None
        break
    return study, None


def run_analysis(
    input_dirs: Sequence[str | Path], output_dir: str | Path, study: str | None = None
) -> AnalysisOutcome:
    """Aggregate every usable run under ``input_dirs`` and write tables, figures, report."""
    out = Path(output_dir)
    loaded = load_runs([Path(p) for p in input_dirs], study=study)
    study_name = study or next(iter(loaded.studies))
    found = find_study(*_study_reference(loaded.runs, study_name))
    spec = analysis_of(found)
    metrics_long = None
    if spec is None:  # the default analysis: every metric any run logged
        metrics_long = load_metrics(loaded)
        logged = [c for c in metrics_long.columns if c not in ("run_id", "epoch")]
        spec = generic_analysis(loaded.runs, config_columns(loaded.runs), logged,
                                found.group_keys if found is not None else ())
    runs = spec.prepare(loaded.runs.copy()) if spec.prepare else loaded.runs.copy()
    group_keys = [k for k in spec.group_keys if k in runs.columns]
    varying = [k for k in group_keys if runs[k].astype(str).nunique() > 1]

    finals = aggregate_final(runs, group_keys, list(spec.final_metrics))
    curves = pd.DataFrame()
    skipped = list(loaded.skipped)
    curve_gaps: list[tuple[str, str]] = []
    if spec.curve_metrics:
        if metrics_long is None:
            metrics_long = load_metrics(loaded, list(spec.curve_metrics))
        curves = aggregate_curves(metrics_long, runs, group_keys, list(spec.curve_metrics))
        curve_gaps = [(str(p), r) for p, r in loaded.metrics_skipped]
    _relabel(finals, curves, spec, varying)

    for sub in ("tables", "conditions", "figs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "master.csv", index=False)
    finals.to_csv(out / "summary.csv", index=False)
    if not curves.empty:
        curves.to_csv(out / "curves.csv", index=False)
    write_condition_json(finals, out / "conditions")

    failed = sum(1 for _, reason in skipped if "failed" in reason)
    data = AnalysisData(runs, finals, curves, group_keys, skipped, failed)
    report = Report(f"{study_name}: analysis of {len(runs)} runs")
    _what_ran(report, input_dirs, data, study_name)
    if curve_gaps:
        report.add(
            Table(
                ("run", "reason"),
                tuple(curve_gaps[:50]),
                "Runs whose final metrics are used but whose per-epoch metrics "
                "could not be read (left out of the curves)",
            )
        )
    report.add(Heading("Key findings"))
    findings = spec.findings(data) if spec.findings else []
    report.add(
        Bullets(tuple(findings))
        if findings
        else Paragraph("No study-specific findings are defined for this study; see the tables.")
    )
    if spec.paper_values is not None and spec.reproduction is not None:
        _reproduction(report, out, spec, data)
    report.add(Heading("Tables"))
    for table in spec.tables:
        _table(report, out, finals, table)
    for extra in spec.report_tables(data, out) if spec.report_tables else []:
        report.add(Table(extra.header, extra.rows, extra.caption))
    figures: list[tuple[str, str]] = []
    if spec.figures:
        from sweeplab.analysis.background_save import saving_in_background

        with saving_in_background():  # files written by forked children, on every core
            figures = spec.figures(data, out / "figs")
    if figures:
        report.add(Heading("Figures"))
        report.add(*[Figure(path, caption) for path, caption in figures])
    md, page = _write_report(report, out)
    return AnalysisOutcome(out, md, page, len(runs), len(finals), skipped)


def _reproduction(report: Report, out: Path, spec: StudyAnalysis, data: AnalysisData) -> None:
    """The "paper vs this run" table: in the report, and as CSV and LaTeX under tables/."""
    from sweeplab.analysis.reproduction import HEADER, load_paper_values, reproduction_rows

    values = load_paper_values(spec.paper_values)
    rows = reproduction_rows(values, spec.reproduction(data))
    frame = pd.DataFrame([row.cells() for row in rows], columns=list(HEADER))
    frame.to_csv(out / "tables" / "reproduction.csv", index=False)
    latex = to_latex(frame, [(h, h) for h in HEADER],
                     caption=f"Paper vs this run ({values.paper})", label="tab:reproduction")
    atomic_write_text(out / "tables" / "reproduction.tex", latex)
    counts = {v: sum(r.verdict == v for r in rows) for v in dict.fromkeys(r.verdict for r in rows)}
    report.add(Heading("Paper vs this run"))
    report.add(Paragraph(
        f"Each claim of {values.paper} that this study checks, beside what the runs analysed "
        f"here show, at their scale: " + ", ".join(f"{n} {v}" for v, n in counts.items())
        + ". The paper's values and sources are in the study's paper_values.yaml."))
    report.add(Table(HEADER, tuple(row.cells() for row in rows),
                     "Paper vs this run (CSV: tables/reproduction.csv, LaTeX: "
                     "tables/reproduction.tex)"))


def _relabel(
    finals: pd.DataFrame, curves: pd.DataFrame, spec: StudyAnalysis, varying: list[str]
) -> None:
    """Give every condition the study's label (or the generic one), in both tables."""
    labels = {}
    for _, row in finals.iterrows():
        text = spec.label(row, varying) if spec.label else condition_label(row, varying)
        labels[row["condition"]] = text or "all runs"
    finals["condition"] = finals["condition"].map(labels)
    if not curves.empty:
        curves["condition"] = curves["condition"].map(labels)


def _what_ran(
    report: Report, input_dirs: Sequence[str | Path], data: AnalysisData, study: str
) -> None:
    report.add(Heading("What ran"))
    grids = sorted(data.runs["grid"].astype(str).unique())
    varying = [k for k in data.group_keys if data.runs[k].astype(str).nunique() > 1]
    report.add(
        Paragraph(
            f"Study {study}: {len(data.runs)} finished runs in {len(data.finals)} conditions "
            f"(conditions differ in {', '.join(varying) or 'nothing'}; seeds are replicates), "
            f"from {len(grids)} grid(s): {', '.join(grids)}. Inputs: "
            f"{', '.join(str(p) for p in input_dirs)}."
        )
    )
    if data.skipped:
        report.add(
            Paragraph(
                f"{len(data.skipped)} run(s) were not analysed ({data.failed} failed); "
                "they are listed here and their directories are untouched."
            )
        )
        report.add(
            Table(
                ("run", "reason"),
                tuple((p, r) for p, r in data.skipped[:50]),
                "Runs not analysed" + (" (first 50)" if len(data.skipped) > 50 else ""),
            )
        )


def fmt_stat(mean: Any, std: Any, digits: int = 3) -> str:
    """``mean ± std`` with ``digits`` significant figures; ``mean`` alone for one seed."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.{digits}g}"


def _table(report: Report, out: Path, finals: pd.DataFrame, table: Any) -> None:
    present = [(m, h) for m, h in table.metrics if f"{m}_mean" in finals]
    if not present:
        return
    columns = [("condition", "condition"), ("count", "n"), *present]
    latex = to_latex(finals, columns, caption=table.caption, label=f"tab:{table.name}")
    atomic_write_text(out / "tables" / f"{table.name}.tex", latex)
    rows = []
    for _, row in finals.iterrows():
        cells = [str(row["condition"]), str(int(row["count"]))]
        cells += [fmt_stat(row[f"{m}_mean"], row[f"{m}_std"]) for m, _ in present]
        rows.append(tuple(cells))
    header = ("condition", "n") + tuple(h for _, h in present)
    report.add(
        Table(
            header,
            tuple(rows),
            f"{table.caption} (mean ± std across seeds; LaTeX: tables/{table.name}.tex)",
        )
    )
