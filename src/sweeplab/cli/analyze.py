"""``sweeplab analyze DIR [DIR ...] [--output_dir OUT]`` (or ``--input_dir DIR``, repeatable).

Aggregates finished runs across seeds into tables, figures and a report (Markdown and
self-contained HTML). Bad runs (failed, missing or corrupt files) are listed and skipped.
A plugin whose folders are not runs (an agent's) analyses them through its
``sweeplab.analyzers`` entry point. Needs the ``analysis`` extra.
"""

from __future__ import annotations

from pathlib import Path

from sweeplab.cli.console import console
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.core.registry import analyzers, require
from sweeplab.errors import ConfigError

ALLOWED = ["--input_dir", "--output_dir", "--study"]
REQUIRES = ("pandas", "pyarrow", "scipy", "matplotlib")
"""What the analysis imports (the ``analysis`` extra installs it)."""


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="sweeplab analyze",
        description="Aggregate finished runs across seeds into tables, figures and a report.")
    p.add_argument("dirs", nargs="*", metavar="DIR",
                   help="a grid directory, a run directory or a folder of them")
    p.add_argument(
        "--input_dir",
        "--input-dir",
        action="append",
        default=[],
        help="same as DIR (repeatable)",
    )
    p.add_argument(
        "--output_dir",
        "--output-dir",
        default=None,
        help="where tables, figures and the report go "
        "(default: analysis_results/<name of the first input>)",
    )
    p.add_argument(
        "--study", default=None, help="analyse only this study's runs when several are mixed"
    )
    return p


def default_output(input_dir: str) -> Path:
    """analysis_results/<input folder name>."""
    return Path("analysis_results") / Path(input_dir).resolve().name


def main(argv: list[str]) -> int:
    parser = build_parser()
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ALLOWED, "sweeplab analyze")
    inputs = [*ns.dirs, *ns.input_dir]
    if not inputs:
        raise ConfigError("input_dir", None, "give the directories to analyse: "
                          "sweeplab analyze DIR [DIR ...] (a grid, a run or a folder of runs)")
    for path in inputs:
        if not Path(path).is_dir():
            raise ConfigError("input_dir", path, "no such directory")
    return analyze(inputs, ns.output_dir or default_output(inputs[0]), ns.study)


def analyze(input_dirs: list[str], output_dir: str | Path, study: str | None = None) -> int:
    """Run the analysis and print where its outputs are (also used by ``grid --analyze``)."""
    require("sweeplab analyze", REQUIRES, "sweeplab[analysis]")
    for analyzer in analyzers():
        done = analyzer(input_dirs, Path(output_dir))
        if done is not None:
            what, md, page = done
            console.print(f"{what}; report: [bold]{md}[/bold] and {page}", highlight=False)
            return 0
    from sweeplab.analysis.pipeline import run_analysis

    outcome = run_analysis(input_dirs, output_dir, study=study)
    console.print(
        f"analysed {outcome.n_runs} runs in {outcome.n_conditions} conditions; "
        f"{len(outcome.skipped)} skipped",
        highlight=False,
    )
    for path, reason in outcome.skipped[:10]:
        console.print(f"  skipped {path}: {reason}", highlight=False, markup=False)
    if len(outcome.skipped) > 10:
        console.print(f"  ... and {len(outcome.skipped) - 10} more (listed in the report)")
    console.print(
        f"report: [bold]{outcome.report_md}[/bold] and {outcome.report_html}", highlight=False
    )
    return 0
