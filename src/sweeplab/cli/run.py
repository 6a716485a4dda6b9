"""``sweeplab run STUDY [--flags]``: one run of a study in its own directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from sweeplab.cli.console import console
from sweeplab.cli.flags import OneLineParser, add_config_flags, explicit_values, reject_unknown
from sweeplab.core.experiment import make_experiment_dir
from sweeplab.core.registry import Study, get_study, study_names
from sweeplab.core.threads import limit_threads
from sweeplab.execute.single import RunResult, execute_run

SUMMARY_KEYS = (
    "loss", "train_acc", "test_acc", "angle_svm", "angle_logreg", "angle_lp_max_margin",
    "angle_linear_md", "margin_l2", "margin_p", "margin_p_ratio", "align_min", "rank1_min",
    "balance_drift_max",
)
"""Final metrics shown in the terminal summary (all of them are in final.json)."""


def build_parser(study: Study) -> tuple[OneLineParser, list[str]]:
    """The parser of ``sweeplab run <study>``: config flags plus output options."""
    parser = OneLineParser(
        prog=f"sweeplab run {study.name}",
        description=study.description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    out = parser.add_argument_group("output")
    out.add_argument("--out_dir", "--out-dir", default="runs_out",
                     help="folder in which the run's timestamped directory is created")
    out.add_argument("--tag", default=None, help="suffix of the run directory's name")
    out.add_argument("--threads", type=int, default=1,
                     help="torch/BLAS threads of the run (the studies' models are small)")
    out.add_argument("--verbose", "-v", action="store_true", help="show progress messages")
    out.add_argument("--quiet", "-q", action="store_true", help="print only the run directory")
    allowed = add_config_flags(parser, study.config)
    return parser, allowed + ["--out_dir", "--tag", "--threads", "--verbose", "--quiet"]


def main(argv: list[str]) -> int:
    """Validate everything, create the run directory, run, summarize. Returns the exit code."""
    from sweeplab.cli.console import setup_logging

    if not argv or argv[0] in ("-h", "--help"):
        console.print("usage: sweeplab run STUDY [--flags]   (sweeplab run STUDY --help)")
        console.print("studies: " + ", ".join(study_names()))
        return 0
    study = get_study(argv[0])
    parser, allowed = build_parser(study)
    ns, extras = parser.parse_known_args(argv[1:])
    reject_unknown(extras, allowed, f"sweeplab run {study.name}")
    explicit = explicit_values(ns, study.config)
    cfg = study.config.from_mapping(explicit)
    if study.preflight is not None:
        study.preflight(cfg)
    setup_logging(verbose=ns.verbose)
    limit_threads(ns.threads)

    run_dir = make_experiment_dir(ns.out_dir, ns.tag or study.name)
    cli = {"argv": ["sweeplab", "run", *argv], "explicit": explicit}
    result = execute_run(study, cfg, run_dir, cli=cli)
    if ns.quiet:
        console.print(str(run_dir))
    else:
        _print_summary(result)
    return 0 if result.state == "done" else 1


def _print_summary(result: RunResult) -> None:
    if result.state != "done":
        console.print(f"[red]run failed[/red]: {result.error}")
        console.print(f"log: {result.run_dir / 'logs' / 'run.log'}")
        return
    table = Table(title=f"final metrics ({result.duration_s:.2f} s)", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in SUMMARY_KEYS:
        if key in result.final:
            table.add_row(key, _fmt(result.final[key]))
    console.print(table)
    console.print(f"outputs: [bold]{result.run_dir}[/bold]")
    for name in _listing(result.run_dir):
        console.print(f"  {name}")


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _listing(run_dir: Path) -> list[str]:
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    figs = [f for f in files if f.startswith("figs/")]
    rest = [f for f in files if not f.startswith("figs/")]
    if figs:
        rest.append(f"figs/ ({len(figs)} files: {', '.join(sorted({Path(f).stem for f in figs}))})")
    return rest
