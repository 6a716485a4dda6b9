"""The grid driver as a library: ``run_grid(spec, out_dir=..., executor=...)``.

What ``sweeplab grid`` does, callable from a notebook, a test or another program::

    from sweeplab import make_executor, run_grid

    result = run_grid("spec.yaml", out_dir="runs_out", executor=make_executor("local", jobs=2))
    result.grid_dir, result.counts, result.states["potential=lp,seed=0"]

The driver validates every run of the spec before anything runs, takes the grid
folder's driver lock (:mod:`sweeplab.execute.grid_lock`) for its whole lifetime, writes
``spec.yaml``, ``grid.json`` and ``master.csv``, and hands the runs that are not done to
the executor. Calling it again with the same ``tag`` and ``out_dir`` (or ``resume=DIR``)
resumes the grid: finished runs are kept, the others run again (from their checkpoints).

Nothing is printed here: progress reaches the caller through ``on_plan``, ``on_start``
and ``on_done``. A full disk stops the grid with :class:`GridDiskFullError` (the runs it
interrupted resume later, nothing is lost); Ctrl-C or SIGTERM with
:class:`GridInterrupted`, after the runs in flight saved their checkpoints.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sweeplab.core.disk import DiskFullError, disk_full_file
from sweeplab.core.grid import GridSpec, load_grid_spec, parse_grid_spec
from sweeplab.core.rundir import RunResult, load_json, read_status, record_run_failure
from sweeplab.errors import ConfigError
from sweeplab.execute.base import Executor
from sweeplab.execute.grid_lock import GridLock
from sweeplab.execute.job import Job
from sweeplab.execute.master import MasterTable
from sweeplab.execute.sweep import (
    GRID_FILE,
    SPEC_FILE,
    GridPlan,
    find_grid_dir,
    new_grid_dir,
    plan_grid,
    prepare_grid_dir,
)

log = logging.getLogger("sweeplab.grid")

EXECUTORS = ("inline", "local", "slurm")


class GridInterrupted(KeyboardInterrupt):
    """The grid was stopped (Ctrl-C, SIGTERM); its runs continue on resume."""

    def __init__(self, grid_dir: Path):
        self.grid_dir = grid_dir
        super().__init__(f"grid {grid_dir} interrupted")


class GridDiskFullError(DiskFullError):
    """A full disk stopped the grid; ``interrupted`` runs run again on resume.

    ``removed``: the grid folder was new and has been removed (nothing of it could be
    kept), so the grid starts again from its spec rather than by resuming the folder.
    """

    def __init__(self, path: str, interrupted: int, grid_dir: Path, removed: bool):
        self.grid_dir = grid_dir
        self.removed = removed
        super().__init__(path, interrupted)


@dataclass
class GridResult:
    """What a grid came to: its folder, its plan, and the state of every run."""

    grid_dir: Path
    plan: GridPlan
    states: dict[str, str]
    """Run name -> pending, running, done, failed or interrupted (as master.csv says)."""
    results: dict[str, RunResult] = field(default_factory=dict)
    """The results of the runs that ran in this call, by run name."""
    elapsed_s: float = 0.0

    @property
    def study(self) -> str:
        """The name of the grid's study."""
        return self.plan.jobs[0].study if self.plan.jobs else str(self.plan.spec.study)

    @property
    def counts(self) -> dict[str, int]:
        """Number of runs in each state."""
        out: dict[str, int] = {}
        for state in self.states.values():
            out[state] = out.get(state, 0) + 1
        return out

    @property
    def failed(self) -> int:
        """Runs that failed or were interrupted."""
        counts = self.counts
        return counts.get("failed", 0) + counts.get("interrupted", 0)

    @property
    def done(self) -> int:
        return self.counts.get("done", 0)


def make_executor(
    kind: str = "local",
    *,
    jobs: int | None = None,
    threads: int = 1,
    batch: bool = True,
    **slurm: Any,
) -> Executor:
    """An executor by name: ``inline`` (this process), ``local`` (a pool of ``jobs``
    workers; default: every core this process may use, divided by ``threads``) or
    ``slurm`` (one job array; ``jobs`` caps how many tasks run at once, ``slurm`` passes
    :class:`~sweeplab.execute.slurm.SlurmExecutor`'s options: partition, time,
    cpus_per_task, mem_gb, ...). ``batch`` trains compatible runs as one computation
    where the study supports it (inline and local)."""
    if kind not in EXECUTORS:
        raise ConfigError("executor", kind, "allowed values are " + ", ".join(EXECUTORS))
    if kind == "inline":
        from sweeplab.execute.inline import InlineExecutor

        return InlineExecutor(batch=batch)
    if kind == "local":
        from sweeplab.execute.local import LocalExecutor, default_workers

        return LocalExecutor(workers=jobs or max(1, default_workers() // threads),
                             threads=threads, batch=batch)
    from sweeplab.execute.slurm import SlurmExecutor

    return SlurmExecutor(array_parallelism=jobs, **slurm)


def load_spec(
    spec: GridSpec | str | Path | Mapping[str, Any] | None,
    resume: str | Path | None = None,
    default_study: Any = None,
) -> GridSpec:
    """The spec to run: given (a parsed spec, a YAML file or a mapping), else the copy in
    the grid folder ``resume``, read from the folder of the original."""
    if isinstance(spec, GridSpec):
        return spec
    if isinstance(spec, (str, Path)):
        return load_grid_spec(spec, default_study=default_study)
    if spec is not None:
        return parse_grid_spec(spec, default_study=default_study)
    if resume is None:
        raise ConfigError("config", None, "give a grid spec (YAML) or --resume DIR")
    info = grid_info(Path(resume))
    return load_grid_spec(Path(resume) / SPEC_FILE, base_dir=info.get("spec_dir"),
                          default_study=default_study or info.get("study_ref"))


def grid_info(grid_dir: Path) -> dict[str, Any]:
    """grid.json of a grid directory ({} when unreadable: the spec alone then decides)."""
    try:
        info = load_json(grid_dir / GRID_FILE)
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def run_grid(
    spec: GridSpec | str | Path | Mapping[str, Any] | None = None,
    out_dir: str | Path = "runs_out",
    *,
    executor: Executor | None = None,
    tag: str | None = None,
    resume: str | Path | None = None,
    fresh: bool = False,
    threads: int | None = None,
    jobs: int | None = None,
    batch: bool = True,
    tracking: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    rerun_done: bool = False,
    study: str | None = None,
    default_study: Any = None,
    command: list[str] | None = None,
    on_plan: Callable[[GridPlan, Executor], None] | None = None,
    on_start: Callable[[Job], None] | None = None,
    on_done: Callable[[Job, RunResult], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> GridResult:
    """Run every run of ``spec`` that is not done yet; the grid's :class:`GridResult`.

    ``spec``: a parsed :class:`~sweeplab.core.grid.GridSpec`, a YAML file, or a mapping
    (relative study paths then start from the current folder). The grid folder is
    ``out_dir/<timestamp>_<tag>`` (``tag``: the spec file's name, else its ``name:``,
    else ``grid``); the newest folder of that tag is resumed unless ``fresh``.
    ``resume`` names a grid folder to resume (its ``spec.yaml`` is used when ``spec`` is
    None). ``threads``: torch/BLAS threads per run (default: the executor's own, else 1).
    ``executor`` None: the driver chooses ``inline`` or ``local`` by the work once it
    has planned (:mod:`sweeplab.execute.choose`; the executor's ``reason`` says why),
    with ``jobs`` job slots (default: every core / ``threads``) and ``batch``.

    ``tracking`` (wandb/MLflow settings) override the spec's ``tracking:`` section key
    by key; ``warn`` receives what cannot be set up (default: this module's logger).
    ``overrides`` set a parameter of every run, ``rerun_done`` runs finished runs again
    (a staged study's cache keeps that cheap), ``study`` refuses a spec of any other
    study, ``default_study`` is the study of a spec that names none, and ``command`` is
    what grid.json and the driver lock record as the command that runs the grid.

    Raises :class:`~sweeplab.errors.ConfigError` before anything runs if any run is
    invalid (a new grid folder is then removed), :class:`GridLockedError` if another
    driver runs the folder, :class:`GridDiskFullError` and :class:`GridInterrupted`.
    A failed run is a state in the result, never an exception.
    """
    spec = load_spec(spec, resume, default_study)
    if study is not None and spec.study != study:
        raise ConfigError("study", spec.study, f"this runs {study} grids only")
    created = False
    if resume is not None:
        grid_dir = Path(resume)
        if not (grid_dir / SPEC_FILE).is_file():
            raise ConfigError("resume", str(grid_dir), f"not a grid directory (no {SPEC_FILE})")
    else:
        tag = tag or _tag(spec)
        existing = None if fresh else find_grid_dir(Path(out_dir), tag)
        grid_dir = existing or new_grid_dir(Path(out_dir), tag)
        created = existing is None
    lock = GridLock(grid_dir, command)
    try:
        lock.acquire()
    except BaseException as exc:
        if created:
            shutil.rmtree(grid_dir, ignore_errors=True)
        if isinstance(exc, OSError):
            _raise_if_disk_full(exc, 0, grid_dir, created)
        raise
    try:
        return _drive(spec, grid_dir, created, executor, threads, (jobs, batch), tracking,
                      overrides, rerun_done, command, on_plan, on_start, on_done,
                      warn or log.warning)
    finally:
        lock.release()


def _tag(spec: GridSpec) -> str:
    if spec.source and spec.source.endswith((".yaml", ".yml")):
        return Path(spec.source).stem
    return spec.name or "grid"


def _drive(
    spec: GridSpec,
    grid_dir: Path,
    created: bool,
    executor: Executor | None,
    threads: int | None,
    choose: tuple[int | None, bool],
    tracking: Mapping[str, Any] | None,
    overrides: Mapping[str, Any] | None,
    rerun_done: bool,
    command: list[str] | None,
    on_plan: Callable[[GridPlan, Executor], None] | None,
    on_start: Callable[[Job], None] | None,
    on_done: Callable[[Job, RunResult], None] | None,
    warn: Callable[[str], None],
) -> GridResult:
    """Plan, prepare and run the grid, holding its driver lock."""
    threads = threads or getattr(executor, "threads", 1)
    command = list(command or [])
    try:
        plan = plan_grid(spec, grid_dir, threads=threads, cli={"grid": command},
                         overrides=dict(overrides or {}), rerun_done=rerun_done)
        trackers = _trackers(spec, tracking, grid_dir, warn)
        if trackers is not None:
            plan = plan.with_tracking(trackers)
        executor = executor or _chosen_executor(plan, threads, *choose)
    except BaseException:
        if created:
            shutil.rmtree(grid_dir, ignore_errors=True)
        raise
    try:
        prepare_grid_dir(plan, command, executor.name)
    except OSError as exc:
        if created:  # nothing half-written: the same call starts it again
            shutil.rmtree(grid_dir, ignore_errors=True)
        _raise_if_disk_full(exc, 0, grid_dir, created)
        raise
    master = MasterTable(grid_dir, plan.jobs, plan.varying)
    master.write(force=True)
    if on_plan is not None:
        on_plan(plan, executor)
    started = time.monotonic()
    results: dict[str, RunResult] = {}
    stopped: list[Job] = []
    full: list[str] = []  # for executors that do not stop on a full disk themselves

    def started_one(job: Job) -> None:
        master.update(job, running=True)
        if on_start is not None:
            on_start(job)

    def finished_one(job: Job, result: RunResult) -> None:
        if result.state != "done":
            record_run_failure(Path(job.run_dir), job.config_hash, result.error or "failed",
                               result.state == "interrupted")
        if result.state == "interrupted":
            stopped.append(job)
        if result.disk_full is not None:
            full.append(result.disk_full)
        results[job.name] = result
        master.update(job)
        if on_done is not None:
            on_done(job, result)

    try:
        executor.run(plan.todo, started_one, finished_one)
    except KeyboardInterrupt as exc:
        raise GridInterrupted(grid_dir) from exc
    except (DiskFullError, OSError) as exc:
        _raise_if_disk_full(exc, _interrupted(stopped), grid_dir, False)
        raise
    finally:
        master.write(force=True)
    if full:
        raise GridDiskFullError(full[0], _interrupted(stopped), grid_dir, False)
    states = {name: row["state"] for name, row in master.rows.items()}
    return GridResult(grid_dir, plan, states, results, time.monotonic() - started)


def _chosen_executor(plan: GridPlan, threads: int, jobs: int | None, batch: bool) -> Executor:
    """Inline or local, chosen by the plan's work (:mod:`sweeplab.execute.choose`)."""
    from sweeplab.execute.choose import choose_executor, describe_work
    from sweeplab.execute.local import default_workers

    slots = jobs or max(1, default_workers() // threads)
    choice = choose_executor(describe_work(plan, batch, slots), slots)
    executor = make_executor(choice.kind, jobs=choice.workers, threads=threads, batch=batch)
    executor.reason = choice.reason
    return executor


def _trackers(spec: GridSpec, tracking: Mapping[str, Any] | None, grid_dir: Path,
              warn: Callable[[str], None]) -> dict[str, Any] | None:
    """The grid's prepared trackers as a dict for its jobs (None when none is on)."""
    from sweeplab.track.config import TrackingConfig, prepare_tracking

    values = {**spec.tracking, **{k: v for k, v in (tracking or {}).items() if v is not None}}
    config = TrackingConfig(**values, group=grid_dir.name)
    if not config.enabled:
        return None
    experiment = spec.name or grid_dir.name.split("_", 1)[-1]
    resolved = prepare_tracking(config, grid_dir.parent, experiment, warn=warn)
    return asdict(resolved) if resolved.enabled else None


def _interrupted(stopped: list[Job]) -> int:
    """The stopped runs with a status to show it: a run stopped before it could write
    one never started, and stays pending."""
    return sum(read_status(job.run_dir).state not in ("pending", "done") for job in stopped)


def _raise_if_disk_full(exc: BaseException, interrupted: int, grid_dir: Path,
                        removed: bool) -> None:
    path = disk_full_file(exc)
    if path is not None:
        raise GridDiskFullError(path, interrupted, grid_dir, removed) from exc
