"""``sweeplab run STUDY [--flags]``: one run of a study in its own directory.

STUDY is a registered name or a study of your own: ``./mystudy.py:run`` (a function in
a file, found from the current folder) or ``mypkg.train:run``; its config gives the
flags. ``sweeplab run --command "python train.py" --lr 0.1`` runs an unchanged program
once, its parameters typed by their values (:mod:`sweeplab.cli.command_args`).
``sweeplab run [STUDY] --resume RUN_DIR`` continues an interrupted run from its
last checkpoint, with the config it was started with (``save_interval`` may change).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from sweeplab.cli.command_args import command_run_study, is_command_run
from sweeplab.cli.console import Interrupted, console, fail, say
from sweeplab.cli.flags import (
    OneLineParser,
    add_config_flags,
    config_aliases,
    explicit_values,
    reject_unknown,
)
from sweeplab.cli.tracking import add_tracking_flags, tracking_from
from sweeplab.core.disk import DiskFullError
from sweeplab.core.experiment import load_yaml, make_experiment_dir
from sweeplab.core.registry import Study, resolve_study, study_names
from sweeplab.core.rundir import RunResult, read_status
from sweeplab.core.threads import limit_threads
from sweeplab.errors import ConfigError
from sweeplab.execute.single import execute_run
from sweeplab.track.config import TrackingConfig


def build_parser(study: Study, prog: str | None = None) -> tuple[OneLineParser, list[str]]:
    """The parser of ``sweeplab run <study>``: config flags plus output options."""
    parser = OneLineParser(
        prog=prog or f"sweeplab run {study.name}",
        description=study.description)
    options = _add_output_options(parser)
    allowed = add_config_flags(parser, study.config)
    allowed += add_tracking_flags(parser)
    return parser, allowed + options


def options_parser() -> OneLineParser:
    """A parser of ``sweeplab run``'s own options only (no study's flags, no help)."""
    parser = OneLineParser(add_help=False)
    _add_output_options(parser)
    add_tracking_flags(parser)
    return parser


def _add_output_options(parser: OneLineParser) -> list[str]:
    """Where the run goes and how it talks: ``--out_dir``, ``--tag``, ``--resume``, ..."""
    out = parser.add_argument_group("output")
    out.add_argument("--out_dir", "--out-dir", default="runs_out",
                     help="folder in which the run's timestamped directory is created")
    out.add_argument("--tag", default=None, help="suffix of the run directory's name")
    out.add_argument("--threads", type=int, default=1,
                     help="torch/BLAS threads of the run (the studies' models are small)")
    out.add_argument("--verbose", "-v", action="store_true", help="show progress messages")
    out.add_argument("--quiet", "-q", action="store_true", help="print only the run directory")
    out.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue this run from its last checkpoint (same config)")
    return ["--out_dir", "--tag", "--threads", "--verbose", "--quiet", "--resume"]


def main(argv: list[str], prog: str | None = None) -> int:
    """Validate everything, create the run directory, run, summarize. Returns the exit code.

    ``prog`` names the command in help and messages (a script run as ``python train.py``
    through :func:`sweeplab.main`).
    """
    from sweeplab.cli.console import setup_logging

    if not argv or argv[0] in ("-h", "--help"):
        usage = ("usage: sweeplab run STUDY [--flags]   (sweeplab run STUDY --help)\n"
                 "       sweeplab run [STUDY] --resume RUN_DIR\n"
                 "studies: " + ", ".join(study_names()) + "\n"
                 "or your own: sweeplab run ./mystudy.py:run (a function in a file), "
                 "sweeplab run mypkg.train:run, or an unchanged program: "
                 "sweeplab run --command \"python train.py\" --lr 0.1\n")
        if argv:
            sys.stdout.write(usage)
            return 0
        sys.stderr.write(usage)
        return fail("give a study, e.g. sweeplab run ./mystudy.py:run")
    saved = None
    if is_command_run(argv):
        study, rest, prog = command_run_study(argv, options_parser())
        argv = [study.name, *rest]
    elif argv[0].startswith("--resume"):
        saved = _saved_run(_resume_arg(argv))
        study = resolve_study(saved.get("study_ref") or saved["study"],
                              saved.get("study_dir") or None)
        argv = [study.name, *argv]
    else:
        study = resolve_study(argv[0])
    prog = prog or f"sweeplab run {argv[0]}"
    parser, allowed = build_parser(study, prog)
    ns, extras = parser.parse_known_args(argv[1:])
    reject_unknown(extras, allowed, prog, config_aliases(study.config))
    explicit = explicit_values(ns, study.config)
    if ns.resume:
        saved = saved or _saved_run(ns.resume)
        cfg = _resumed_config(study, saved, explicit)
        run_dir = Path(ns.resume)
    else:
        cfg = study.config.from_mapping(explicit)
    study.check_requirements()
    if study.preflight is not None:
        study.preflight(cfg)
    setup_logging(verbose=ns.verbose)
    limit_threads(ns.threads)

    if ns.resume:
        if saved["status"].state == "done":
            console.print(f"run {run_dir} is already done; nothing to resume", highlight=False)
            return 0
        cli = {**saved.get("cli", {}), "resume_argv": [*shlex.split(prog), *argv[1:]]}
        tracking = _tracking(ns, cli.get("tracking"), run_dir.parent, study.name, None)
    else:
        run_dir = make_experiment_dir(ns.out_dir, ns.tag or study.name)
        cli = {"argv": [*shlex.split(prog), *argv[1:]], "explicit": explicit}
        tracking = _tracking(ns, None, Path(ns.out_dir), study.name, run_dir)
    if tracking is not None:
        cli["tracking"] = asdict(tracking)
    try:
        result = execute_run(study, cfg, run_dir, cli=cli, resume=bool(ns.resume),
                             tracking=tracking)
    except KeyboardInterrupt as exc:
        raise Interrupted(f"continue with: sweeplab run --resume {run_dir}") from exc
    if result.disk_full is not None:
        again = (f"sweeplab run --resume {run_dir}" if (run_dir / "config.yaml").is_file()
                 else shlex.join([*shlex.split(prog), *argv[1:]]))
        return fail(str(DiskFullError(result.disk_full, 1, again)), code=1)
    if ns.quiet:
        say(str(run_dir))
    else:
        _print_summary(result, study)
    return 0 if result.state == "done" else 1


def _tracking(
    ns: argparse.Namespace,
    saved: dict[str, Any] | None,
    runs_dir: Path,
    study: str,
    new_dir: Path | None,
) -> TrackingConfig | None:
    """The run's trackers: the flags, else (on resume) those the run started with."""
    try:
        return tracking_from(ns, saved, runs_dir, experiment=study, group=None)
    except BaseException:
        if new_dir is not None:  # bad tracker flags: leave no empty run directory behind
            shutil.rmtree(new_dir, ignore_errors=True)
        raise


def _resume_arg(argv: list[str]) -> str:
    """The RUN_DIR of ``--resume RUN_DIR`` or ``--resume=RUN_DIR`` at the start of argv."""
    if "=" in argv[0]:
        return argv[0].split("=", 1)[1]
    if len(argv) < 2:
        raise ConfigError("resume", None, "give the run directory to resume: --resume RUN_DIR")
    return argv[1]


def _saved_run(run_dir: str) -> dict[str, Any]:
    """config.yaml and status.json of a run directory about to be resumed."""
    path = Path(run_dir)
    if not (path / "config.yaml").is_file():
        raise ConfigError("resume", run_dir, "not a sweeplab run directory (no config.yaml)")
    saved = load_yaml(path / "config.yaml")
    if not isinstance(saved, dict) or "study" not in saved or "config" not in saved:
        raise ConfigError("resume", run_dir, "config.yaml lacks the study and its config")
    saved["status"] = status = read_status(path)
    if status.state == "running" and status.alive():
        raise ConfigError("resume", run_dir, f"the run is still running (pid {status.pid})")
    return saved


def _resumed_config(study: Study, saved: dict[str, Any], explicit: dict[str, Any]) -> Any:
    """The saved config, with the flags given now; only changes outside its identity."""
    if saved["study"] != study.name:
        raise ConfigError("resume", saved["study"], f"the run is of study {saved['study']}, "
                          f"not {study.name}")
    before = study.config.from_mapping(saved["config"], where="the run's config.yaml")
    cfg = study.config.from_mapping({**saved["config"], **explicit})
    if cfg.config_hash() != before.config_hash():
        changed = sorted(k for k in explicit if saved["config"].get(k) != cfg.canonical()[k])
        raise ConfigError(changed[0], explicit[changed[0]],
                          f"a resumed run keeps its config ({changed[0]}="
                          f"{saved['config'].get(changed[0])!r}); start a new run to change it")
    return cfg


def _print_summary(result: RunResult, study: Study) -> None:
    if result.state != "done":
        console.print(f"[red]run failed[/red]: {result.error}")
        console.print(f"log: {result.run_dir / 'logs' / 'run.log'}")
        return
    table = Table(title=f"final metrics ({result.duration_s:.2f} s)", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = study.summary_keys or [k for k, v in result.final.items()
                                  if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for key in keys:
        if key in result.final:
            table.add_row(key, _fmt(result.final[key]))
    console.print(table)
    console.print(f"outputs: [bold]{result.run_dir}[/bold]")
    for name in _listing(result.run_dir):
        console.print(f"  {name}")
    say(f"next: sweeplab analyze {result.run_dir}")


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _listing(run_dir: Path) -> list[str]:
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    figs = [f for f in files if f.startswith("figs/")]
    rest = [f for f in files if not f.startswith("figs/")]
    if figs:
        rest.append(f"figs/ ({len(figs)} files: {', '.join(sorted({Path(f).stem for f in figs}))})")
    return rest
