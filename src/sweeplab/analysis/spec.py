"""What the analysis of a study consists of: grouping, metrics, tables, figures, findings.

A study may declare a :class:`StudyAnalysis` (the implicit-bias study does, in
``sweeplab.studies.implicit_bias.analysis``); any other study gets
:func:`generic_analysis`: grouped by every parameter that varies except the seeds, with
every numeric final metric aggregated across seeds and tabulated (LaTeX too), a curve
of every logged metric with seed bands and a heatmap for every pair of numeric
parameters (:mod:`sweeplab.analysis.default_report`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SEED_KEYS = ("seed", "data_seed", "model_seed")
"""Parameters that are replicates, never conditions."""

BUILTIN_ANALYSES = {
    "implicit-bias": "sweeplab.studies.implicit_bias.analysis",
    "anchor-composite": "sweeplab.studies.anchor.analysis",
    "inverse-sequence": "sweeplab.studies.anchor.analysis_inverse",
    "minima-volume": "sweeplab.studies.volume.analysis",
}
"""Study -> module defining ``ANALYSIS`` (imported lazily: no torch for analysis)."""


@dataclass(frozen=True)
class TableSpec:
    """A results table: ``tables/<name>.tex`` and a table in the report."""

    name: str
    caption: str
    metrics: tuple[tuple[str, str], ...]
    """(metric, column header) pairs; metrics without the ``final.`` prefix."""


@dataclass(frozen=True)
class ReportTable:
    """A table for the report: header, rows of cell text, caption."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str


@dataclass
class AnalysisData:
    """Everything figures and findings may use."""

    runs: pd.DataFrame
    finals: pd.DataFrame
    curves: pd.DataFrame
    group_keys: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: int = 0


@dataclass(frozen=True)
class StudyAnalysis:
    """How one study's runs are analysed."""

    group_keys: tuple[str, ...]
    final_metrics: tuple[str, ...]
    curve_metrics: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    """Adds derived columns to the runs table before grouping."""
    label: Callable[[Any, list[str]], str] | None = None
    """Condition label from a finals row and the group keys that vary."""
    figures: Callable[[AnalysisData, Path], list[tuple[str, str]]] | None = None
    """Draws the study's figures into a folder; returns (relative png path, caption)."""
    findings: Callable[[AnalysisData], list[str]] | None = None
    """Key findings as sentences derived from the numbers."""
    report_tables: Callable[[AnalysisData, Path], list[ReportTable]] | None = None
    """Tables beyond the per-condition ones (e.g. per model inside a run); the callable
    also writes their CSV/LaTeX files into the output folder it is given."""
    paper_values: Path | None = None
    """The study's ``paper_values.yaml`` (see :mod:`sweeplab.analysis.reproduction`)."""
    reproduction: Callable[[AnalysisData], dict[str, Any]] | None = None
    """Measures each claim of ``paper_values`` from the runs: claim id -> ``Measured``
    (or None where the runs do not contain what the claim needs)."""


def generic_analysis(runs: pd.DataFrame, config_keys: list[str],
                     curve_metrics: tuple[str, ...] | list[str] = ()) -> StudyAnalysis:
    """Group by the varying parameters (not seeds); aggregate every numeric final metric
    and ``curve_metrics`` (the logged ones); draw the default figures."""
    from sweeplab.analysis.default_report import default_figures

    varying = [
        k
        for k in config_keys
        if k not in SEED_KEYS and k in runs and runs[k].astype(str).nunique() > 1
    ]
    metrics = tuple(
        c.removeprefix("final.")
        for c in runs.columns
        if c.startswith("final.")
        and pd.api.types.is_numeric_dtype(runs[c])
        and not pd.api.types.is_bool_dtype(runs[c])
    )
    table = TableSpec(
        "final_metrics",
        "Final metrics, mean $\\pm$ std across seeds",
        tuple((m, m) for m in metrics),
    )
    return StudyAnalysis(group_keys=tuple(varying), final_metrics=metrics,
                         curve_metrics=tuple(curve_metrics), tables=(table,),
                         figures=default_figures)


def get_analysis(study: str) -> StudyAnalysis | None:
    """The study's declared analysis, or None (then the caller uses the generic one)."""
    module = BUILTIN_ANALYSES.get(study)
    if module is None:
        return None
    return importlib.import_module(module).ANALYSIS
