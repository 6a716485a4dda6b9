"""A job: one run of a grid as plain, serializable data, and the function that runs it.

Jobs are what cross from the planner (what to run) to an executor (where it runs): a
study (its name, or the reference and folder that find a user's own study), a validated
config as a plain dict and a run directory. Any executor (this
process, a local pool, a Slurm array) calls :func:`run_job` on them and gets a plain dict
back, so nothing but data crosses a process or machine boundary.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeplab.execute.single import RunResult


@dataclass(frozen=True)
class Job:
    """One run: ``study`` with ``config`` (validated, canonical) in ``run_dir``.

    ``study_ref`` (with ``study_dir``, the folder it is relative to), when set, is the
    study reference any process resolves (:func:`~sweeplab.core.registry.resolve_study`):
    a user's file or module, or a command. Otherwise ``study`` is a registered name,
    registered by importing ``study_module``.
    """

    study: str
    config: dict[str, Any]
    run_dir: str
    name: str
    config_hash: str
    threads: int = 1
    cli: dict[str, Any] = field(default_factory=dict)
    study_module: str = ""
    tracking: dict[str, Any] = field(default_factory=dict)
    """A prepared :class:`~sweeplab.track.config.TrackingConfig` as a dict (empty: none)."""
    batch_key: str | None = None
    """Jobs with equal keys may run as one batched computation (None: never batched)."""
    study_ref: Any = None
    study_dir: str = ""

    def resolve_study(self) -> Any:
        """The job's :class:`~sweeplab.core.registry.Study`, found as the planner found it."""
        from sweeplab.core.registry import get_study, resolve_study

        if self.study_ref is not None:
            return resolve_study(self.study_ref, self.study_dir or None)
        if self.study_module:
            importlib.import_module(self.study_module)
        return get_study(self.study)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobResult:
    """What comes back from a job: its state, final metrics, error, time.

    ``state`` is ``done``, ``failed`` or ``interrupted`` (stopped, to run again on
    resume); ``disk_full`` names the file a full disk stopped (see
    :mod:`sweeplab.core.disk`): the executor then stops the grid.
    """

    name: str
    state: str
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    disk_full: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of_run(cls, name: str, result: RunResult) -> JobResult:
        """The job result of run ``name``'s :class:`~sweeplab.execute.single.RunResult`."""
        return cls(name, result.state, result.final, result.error, result.duration_s,
                   result.disk_full)


def run_jobs(jobs: list[Job]) -> list[JobResult]:
    """Run a unit of jobs in this process: one job alone, or several as one batch."""
    if len(jobs) == 1:
        return [run_job(jobs[0])]
    from sweeplab.execute.batch import run_batch_jobs

    return run_batch_jobs(jobs)


def run_job(job: Job) -> JobResult:
    """Run one job in this process (any worker calls this); never raises for a run's failure.

    The study is found first (a fresh worker imports its module or the user's file). The
    run directory is created if missing (with figs/, tables/, logs/). Threads are
    limited before the study imports its heavy modules. A run with a checkpoint of its
    config left in its directory (the planner keeps only those) resumes from it. A full
    disk, wherever met, is an ``interrupted`` result naming the file.
    """
    from sweeplab.core.threads import limit_threads
    from sweeplab.execute.single import execute_run, record_disk_full

    limit_threads(job.threads)
    try:
        study = job.resolve_study()
    except ImportError as exc:
        return JobResult(job.name, "failed", error=f"cannot import the study: {exc}")
    except Exception as exc:  # noqa: BLE001 - a study that cannot be found fails its run
        return JobResult(job.name, "failed", error=f"cannot find the study: {exc}")
    run_dir = Path(job.run_dir)
    try:
        make_run_subdirs(run_dir)
    except OSError as exc:
        stopped = record_disk_full(run_dir, job.config_hash, exc)
        if stopped is None:
            raise
        return JobResult.of_run(job.name, stopped)
    try:
        cfg = study.config.from_mapping(job.config, where=f"run {job.name}")
    except Exception as exc:  # noqa: BLE001 - a bad job is a failed run, not a dead worker
        return JobResult(job.name, "failed", error=f"{type(exc).__name__}: {exc}")
    tracking = None
    if job.tracking:
        from sweeplab.track.config import TrackingConfig

        tracking = TrackingConfig(**job.tracking)
    result = execute_run(study, cfg, run_dir, cli=job.cli, resume=True, tracking=tracking,
                         run_name=job.name)
    return JobResult.of_run(job.name, result)


def make_run_subdirs(run_dir: Path) -> None:
    """Create ``run_dir`` with its figs/, tables/ and logs/ folders (if missing)."""
    from sweeplab.core.experiment import RUN_SUBDIRS

    for sub in RUN_SUBDIRS:
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
