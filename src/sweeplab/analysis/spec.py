"""What the analysis of a study consists of: grouping, metrics, tables, figures, findings.

A study may declare a :class:`StudyAnalysis` (``register_study(..., analysis=...)``,
usually as ``"package.module:ANALYSIS"`` so it is imported only by the analysis); any
other study gets :func:`generic_analysis`: grouped by the study's ``group_keys``, else by
every parameter that varies except the seeds, with every numeric final metric
aggregated across seeds and tabulated (LaTeX too), a curve of every logged metric with
seed bands and a heatmap for every pair of numeric parameters
(:mod:`sweeplab.analysis.default_report`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

SEED_KEYS = ("seed", "data_seed", "model_seed")
"""Parameters that are replicates, never conditions."""

log = logging.getLogger("sweeplab.analysis")


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
                     curve_metrics: tuple[str, ...] | list[str] = (),
                     group_keys: tuple[str, ...] | list[str] = ()) -> StudyAnalysis:
    """Group by ``group_keys`` (a study's own), else by the varying parameters (not
    seeds); aggregate every numeric final metric and ``curve_metrics`` (the logged ones);
    draw the default figures."""
    from sweeplab.analysis.default_report import default_figures

    varying = list(group_keys) or [
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


def find_study(study: Any, base_dir: str | None = None) -> Any:
    """The :class:`~sweeplab.core.registry.Study` of runs made by ``study`` (a name or a
    reference, relative to ``base_dir``), or None when it cannot be found here (a user's
    file moved away, a study no longer installed): its runs still get the default
    report."""
    from sweeplab.core.registry import resolve_study
    from sweeplab.errors import SweeplabError

    try:
        return resolve_study(study, base_dir)
    except SweeplabError as exc:
        log.info("study %s not found (%s); the default analysis applies", study, exc)
        return None


def analysis_of(study: Any) -> StudyAnalysis | None:
    """The analysis a :class:`~sweeplab.core.registry.Study` declares (None: none)."""
    from sweeplab.core.registry import load_object

    if study is None or study.analysis is None:
        return None
    analysis = load_object(study.analysis)
    if not isinstance(analysis, StudyAnalysis) and callable(analysis):
        analysis = analysis()
    if not isinstance(analysis, StudyAnalysis):
        raise TypeError(f"study {study.name}: its analysis is {type(analysis).__name__}, "
                        "not a StudyAnalysis")
    return analysis


def get_analysis(study: Any, base_dir: str | None = None) -> StudyAnalysis | None:
    """The declared analysis of ``study`` (a name or reference), or None (then the
    caller uses the generic one)."""
    return analysis_of(find_study(study, base_dir))
