"""``sweeplab grid CONFIG --tag NAME``: run a grid in parallel, resumably.

Every expanded config is validated before anything runs. Re-running the same command
(same ``--tag`` and ``--out_dir``) resumes the newest grid directory of that tag;
``--resume DIR`` resumes a given one; ``--fresh`` starts a new directory regardless.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sweeplab.cli.console import Interrupted, console, fail, say
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.cli.progress import GridProgress
from sweeplab.cli.tracking import TRACKING_FLAGS, add_tracking_flags, tracking_from
from sweeplab.core.disk import DiskFullError, disk_full_file
from sweeplab.core.grid import load_grid_spec
from sweeplab.errors import ConfigError
from sweeplab.execute.base import Executor
from sweeplab.execute.grid_lock import GridLock, GridLockedError
from sweeplab.execute.job import Job, JobResult
from sweeplab.execute.local import default_workers
from sweeplab.execute.master import MasterTable
from sweeplab.execute.sweep import (
    SPEC_FILE,
    find_grid_dir,
    new_grid_dir,
    plan_grid,
    prepare_grid_dir,
    read_status,
    record_failure,
)

EXECUTORS = ("inline", "local", "slurm")
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
    p.add_argument("--executor", default="local", help="inline | local | slurm")
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
    if ns.executor not in EXECUTORS:
        raise ConfigError("executor", ns.executor, "allowed values are " + ", ".join(EXECUTORS))
    if ns.batch not in BATCH_MODES:
        raise ConfigError("batch", ns.batch, "allowed values are " + ", ".join(BATCH_MODES))
    for key in ("jobs", "threads", "cpus", "time"):
        value = getattr(ns, key)
        if value is not None and value < 1:
            raise ConfigError(key, value, "must be >= 1")

    config = ns.config or ns.config_flag
    created = False
    if ns.resume:
        grid_dir = Path(ns.resume)
        if not (grid_dir / SPEC_FILE).is_file():
            raise ConfigError("resume", str(grid_dir), f"not a grid directory (no {SPEC_FILE})")
        if config:
            spec = load_grid_spec(config, default_study=default_study)
        else:  # the copy in the grid directory, read from the folder of the original
            info = _grid_info(grid_dir)
            spec = load_grid_spec(grid_dir / SPEC_FILE, base_dir=info.get("spec_dir"),
                                  default_study=default_study or info.get("study_ref"))
        _check_study(spec.study, study, prog)
    else:
        if not config:
            raise ConfigError("config", None, "give a grid spec (YAML) or --resume DIR")
        spec = load_grid_spec(config, default_study=default_study)
        _check_study(spec.study, study, prog)
        tag = ns.tag or Path(config).stem
        existing = None if ns.fresh else find_grid_dir(Path(ns.out_dir), tag)
        grid_dir = existing or new_grid_dir(Path(ns.out_dir), tag)
        created = existing is None

    command = [*prog.split(), *argv]
    lock = GridLock(grid_dir, command)
    try:
        lock.acquire()
    except (GridLockedError, OSError) as exc:
        if created:
            shutil.rmtree(grid_dir, ignore_errors=True)
        if isinstance(exc, OSError):  # a full disk before anything ran: start it again
            return _stopped_by_full_disk(exc, [], " ".join(command))
        raise
    try:
        return _drive(ns, spec, grid_dir, created, command, prog, overrides, rerun_done)
    finally:
        lock.release()


def _drive(
    ns: argparse.Namespace,
    spec: Any,
    grid_dir: Path,
    created: bool,
    command: list[str],
    prog: str,
    overrides: dict[str, Any] | None,
    rerun_done: bool,
) -> int:
    """Plan, prepare and run the grid, holding its driver lock; the exit status."""
    try:
        plan = plan_grid(spec, grid_dir, threads=ns.threads, cli={"grid": command},
                         overrides=overrides, rerun_done=rerun_done)
        tracking = tracking_from(ns, spec.tracking, grid_dir.parent,
                                 experiment=spec.name or grid_dir.name.split("_", 1)[-1],
                                 group=grid_dir.name)
        if tracking is not None:
            plan = plan.with_tracking(asdict(tracking))
    except BaseException:
        if created:
            shutil.rmtree(grid_dir, ignore_errors=True)
        raise
    executor = _make_executor(ns, grid_dir)
    again = ("sweeplab grid --resume " + str(grid_dir) if prog == "sweeplab grid"
             else " ".join(command))
    try:
        prepare_grid_dir(plan, command, executor.name)
    except OSError as exc:
        if created:  # nothing half-written: the same command starts it again
            shutil.rmtree(grid_dir, ignore_errors=True)
            again = " ".join(command)
        return _stopped_by_full_disk(exc, [], again)

    study_name = plan.jobs[0].study if plan.jobs else str(spec.study)
    console.print(f"grid [bold]{grid_dir}[/bold]: {len(plan.jobs)} runs of {study_name}, "
                  f"{len(plan.done)} already done, {len(plan.todo)} to run "
                  f"({executor.name} executor)", highlight=False)
    master = MasterTable(grid_dir, plan.jobs, plan.varying)
    master.write(force=True)
    started = time.monotonic()
    workers = getattr(executor, "workers", 1)
    progress = GridProgress(len(plan.jobs), len(plan.done), workers, console)

    def on_start(job: Job) -> None:
        progress.start(job)
        master.update(job, running=True)

    stopped: list[Job] = []
    full: list[DiskFullError] = []  # for executors that do not stop on a full disk

    def on_done(job: Job, result: JobResult) -> None:
        if result.state != "done":
            record_failure(job, result.error or "failed", result.state == "interrupted")
        if result.state == "interrupted":
            stopped.append(job)
        if result.disk_full is not None:
            full.append(DiskFullError(result.disk_full))
        progress.finish(job, result)
        master.update(job)

    try:
        with progress:
            executor.run(plan.todo, on_start, on_done)
    except KeyboardInterrupt as exc:
        raise Interrupted(f"runs continue from their checkpoints with: {again}") from exc
    except (DiskFullError, OSError) as exc:
        return _stopped_by_full_disk(exc, stopped, again)
    finally:
        master.write(force=True)
    if full:
        return _stopped_by_full_disk(full[0], stopped, again)
    counts = master.counts()
    failed = counts.get("failed", 0) + counts.get("interrupted", 0)
    elapsed = time.monotonic() - started
    console.print(f"{counts.get('done', 0)} done, {failed} failed of {len(plan.jobs)} runs "
                  f"in {elapsed:.1f}s; master table: {master.path}", highlight=False)
    if failed:
        console.print(f"see the failures: sweeplab status {grid_dir}", highlight=False)
    if ns.analyze and counts.get("done", 0):
        from sweeplab.cli.analyze import analyze, default_output

        analyze([str(grid_dir)], default_output(str(grid_dir)))
    elif counts.get("done", 0):
        say(f"next: sweeplab analyze {grid_dir}")
    return 1 if failed else 0


def _stopped_by_full_disk(exc: BaseException, stopped: list[Job], again: str) -> int:
    """One line for a grid a full disk stopped (exit 1); any other error propagates.

    The runs counted are those stopped with a status to show it: a run stopped before
    it could write one never started, and stays pending.
    """
    path = disk_full_file(exc)
    if path is None:
        raise exc
    interrupted = sum(read_status(Path(job.run_dir)).get("state") not in (None, "done")
                      for job in stopped)
    return fail(str(DiskFullError(path, interrupted, again)), code=1)


def _grid_info(grid_dir: Path) -> dict[str, Any]:
    """grid.json of a grid directory ({} when unreadable: the spec alone then decides)."""
    from sweeplab.core.experiment import load_json

    try:
        info = load_json(grid_dir / "grid.json")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _check_study(found: Any, wanted: str | None, prog: str) -> None:
    if wanted is not None and found != wanted:
        raise ConfigError("study", found, f"{prog} runs {wanted} grids only")


def _make_executor(ns: argparse.Namespace, grid_dir: Path) -> Executor:
    if ns.executor == "inline":
        from sweeplab.execute.inline import InlineExecutor

        return InlineExecutor(batch=ns.batch == "auto")
    if ns.executor == "local":
        from sweeplab.execute.local import LocalExecutor

        return LocalExecutor(workers=ns.jobs or max(1, default_workers() // ns.threads),
                             threads=ns.threads, batch=ns.batch == "auto")
    from sweeplab.execute.slurm import SlurmExecutor

    return SlurmExecutor(
        folder=grid_dir / ".submitit", partition=ns.partition, time=ns.time,
        cpus_per_task=ns.cpus, mem_gb=ns.mem, array_parallelism=ns.jobs or 64,
    )
