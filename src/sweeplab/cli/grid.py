"""``sweeplab grid CONFIG --tag NAME``: run a grid in parallel, resumably.

Every expanded config is validated before anything runs. Re-running the same command
(same ``--tag`` and ``--out_dir``) resumes the newest grid directory of that tag;
``--resume DIR`` resumes a given one; ``--fresh`` starts a new directory regardless.
The grid itself runs in :func:`sweeplab.execute.driver.run_grid`; this verb parses the
flags and shows progress.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sweeplab.cli.console import Interrupted, console, fail, say
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.cli.progress import GridProgress
from sweeplab.cli.tracking import TRACKING_FLAGS, TRACKING_KEYS, add_tracking_flags, warn
from sweeplab.core.disk import DiskFullError
from sweeplab.errors import ConfigError
from sweeplab.execute.base import Executor
from sweeplab.execute.driver import (
    EXECUTORS,
    GridDiskFullError,
    GridInterrupted,
    GridResult,
    make_executor,
    run_grid,
)
from sweeplab.execute.sweep import GridPlan

BATCH_MODES = ("auto", "off")


def build_parser() -> OneLineParser:
    """Flags of ``sweeplab grid``."""
    p = OneLineParser(prog="sweeplab grid", description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", help="grid spec (YAML); omit with --resume")
    p.add_argument("--config", dest="config_flag", metavar="CONFIG", help="same as CONFIG")
    p.add_argument("--tag", help="name of the grid directory (default: the config's file name)")
    p.add_argument("--out_dir", "--out-dir", default="runs_out", help="where grid directories go")
    p.add_argument("--resume", metavar="DIR", help="resume this grid directory")
    p.add_argument("--fresh", action="store_true", help="start a new directory even if one exists")
    p.add_argument("--executor", default=None,
                   help="inline | local | slurm (default: inline or local, chosen by the work "
                        "and said in the first line; see docs/grids.md)")
    p.add_argument("--jobs", "-j", type=int, default=None,
                   help="parallel runs (local: default all cores; slurm: array parallelism)")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS threads per run")
    p.add_argument("--batch", default="auto",
                   help="auto: train compatible runs as one batched computation where the "
                        "study supports it (inline and local executors); off: one by one")
    p.add_argument("--analyze", action="store_true",
                   help="run sweeplab analyze on the grid when it ends "
                        "(into analysis_results/<grid dir name>)")
    add_tracking_flags(p)
    s = p.add_argument_group("slurm")
    s.add_argument("--partition", default=None, help="Slurm partition")
    s.add_argument("--time", type=int, default=60, help="time limit per run, minutes")
    s.add_argument("--cpus", type=int, default=1, help="CPUs per run")
    s.add_argument("--mem", type=float, default=2.0, help="memory per run, GB")
    return p


ALLOWED = ["--config", "--tag", "--out_dir", "--resume", "--fresh", "--executor", "--jobs",
           "--threads", "--batch", "--analyze", "--partition", "--time", "--cpus", "--mem",
           *TRACKING_FLAGS]


def main(
    argv: list[str],
    *,
    prog: str = "sweeplab grid",
    overrides: dict[str, Any] | None = None,
    rerun_done: bool = False,
    study: str | None = None,
    default_study: Any = None,
) -> int:
    """Plan (validating everything), then run what is not done; exit 1 if any run failed,
    or if a full disk stopped the grid (one line: the runs it interrupted, how to resume).

    Other verbs run grids through here: ``prog`` names them in messages, ``overrides``
    set a key of every run, ``rerun_done`` runs finished runs again (a staged study's
    cache keeps that cheap) and ``study`` refuses specs of any other study.
    ``default_study`` is the study of a spec that names none (a script's own grid).
    """
    parser = build_parser()
    parser.prog = prog
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ALLOWED, prog)
    if ns.executor is not None and ns.executor not in EXECUTORS:
        raise ConfigError("executor", ns.executor, "allowed values are " + ", ".join(EXECUTORS))
    if ns.batch not in BATCH_MODES:
        raise ConfigError("batch", ns.batch, "allowed values are " + ", ".join(BATCH_MODES))
    for key in ("jobs", "threads", "cpus", "time"):
        value = getattr(ns, key)
        if value is not None and value < 1:
            raise ConfigError(key, value, "must be >= 1")
    config = ns.config or ns.config_flag
    if ns.resume and not (Path(ns.resume) / "spec.yaml").is_file():
        raise ConfigError("resume", ns.resume, "not a grid directory (no spec.yaml)")
    if not ns.resume and not config:
        raise ConfigError("config", None, "give a grid spec (YAML) or --resume DIR")
    command = [*prog.split(), *argv]
    progress: list[GridProgress] = []

    def on_plan(plan: GridPlan, executor: Executor) -> None:
        console.print(f"grid [bold]{plan.grid_dir}[/bold]: {len(plan.jobs)} runs of "
                      f"{_study_name(plan)}, {len(plan.done)} already done, "
                      f"{len(plan.todo)} to run ({_executor_words(executor)})",
                      highlight=False)
        progress.append(GridProgress(len(plan.jobs), len(plan.done),
                                     getattr(executor, "workers", 1), console))
        progress[0].__enter__()

    try:
        result = run_grid(
            config, ns.out_dir, executor=_make_executor(ns), tag=ns.tag or None,
            resume=ns.resume, fresh=ns.fresh, threads=ns.threads, jobs=ns.jobs,
            batch=ns.batch == "auto",
            tracking={key: getattr(ns, key, None) for key in TRACKING_KEYS},
            overrides=overrides, rerun_done=rerun_done, study=study,
            default_study=default_study, command=command, on_plan=on_plan,
            on_start=lambda job: progress[0].start(job),
            on_done=lambda job, res: progress[0].finish(job, res), warn=warn,
        )
    except GridInterrupted as exc:
        raise Interrupted("runs continue from their checkpoints with: "
                          + _again(prog, exc.grid_dir, command)) from exc
    except GridDiskFullError as exc:
        again = " ".join(command) if exc.removed else _again(prog, exc.grid_dir, command)
        return fail(str(DiskFullError(exc.path, exc.interrupted, again)), code=1)
    finally:
        if progress:
            progress[0].__exit__(None, None, None)
    return _report(ns, result)


def _study_name(plan: GridPlan) -> str:
    return plan.jobs[0].study if plan.jobs else str(plan.spec.study)


def _executor_words(executor: Executor) -> str:
    """``local executor`` when named; ``inline: ~3s of work`` or ``local, 2 workers:
    30 runs`` when the driver chose it (which, and why)."""
    if not executor.reason:
        return f"{executor.name} executor"
    workers = getattr(executor, "workers", None)
    size = f", {workers} workers" if executor.name == "local" and workers else ""
    return f"{executor.name}{size}: {executor.reason}"


def _again(prog: str, grid_dir: Path, command: list[str]) -> str:
    """The command that continues a stopped grid."""
    return f"sweeplab grid --resume {grid_dir}" if prog == "sweeplab grid" else " ".join(command)


def _report(ns: argparse.Namespace, result: GridResult) -> int:
    """The grid's last lines (counts, master table, what to do next); the exit status."""
    failed = result.failed
    total = len(result.plan.jobs)
    master = result.grid_dir / "master.csv"
    console.print(f"{result.done} done, {failed} failed of {total} runs "
                  f"in {result.elapsed_s:.1f}s; master table: {master}", highlight=False)
    if failed:
        console.print(f"see the failures: sweeplab status {result.grid_dir}", highlight=False)
    if ns.analyze and result.done:
        from sweeplab.cli.analyze import analyze, default_output

        analyze([str(result.grid_dir)], default_output(str(result.grid_dir)))
    elif result.done:
        say(f"next: sweeplab analyze {result.grid_dir}")
    return 1 if failed else 0


def _make_executor(ns: argparse.Namespace) -> Executor | None:
    """The executor ``--executor`` names; None lets the driver choose by the work."""
    if ns.executor is None:
        return None
    if ns.executor == "slurm":
        return make_executor("slurm", jobs=ns.jobs or 64, partition=ns.partition,
                             time=ns.time, cpus_per_task=ns.cpus, mem_gb=ns.mem)
    return make_executor(ns.executor, jobs=ns.jobs, threads=ns.threads,
                         batch=ns.batch == "auto")
