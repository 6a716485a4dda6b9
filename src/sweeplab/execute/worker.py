"""The worker's side of a job: find the study, prepare the run directory, run it.

Every executor runs its jobs through :func:`run_jobs` (or :func:`run_job` for one), in
this process, a local pool's worker or a Slurm array task alike, and gets one
:class:`~sweeplab.core.rundir.RunResult` per job back. A run's failure is a result, not
an exception, so one bad run never ends a worker.
"""

from __future__ import annotations

from pathlib import Path

from sweeplab.core.rundir import RunResult, make_run_subdirs
from sweeplab.execute.job import Job


def run_jobs(jobs: list[Job]) -> list[RunResult]:
    """Run a unit of jobs in this process: one job alone, or several as one batch."""
    if len(jobs) == 1:
        return [run_job(jobs[0])]
    from sweeplab.execute.batch import run_batch_jobs

    return run_batch_jobs(jobs)


def run_job(job: Job) -> RunResult:
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
        return RunResult(job.name, "failed", error=f"cannot import the study: {exc}")
    except Exception as exc:  # noqa: BLE001 - a study that cannot be found fails its run
        return RunResult(job.name, "failed", error=f"cannot find the study: {exc}")
    run_dir = Path(job.run_dir)
    try:
        make_run_subdirs(run_dir)
    except OSError as exc:
        stopped = record_disk_full(run_dir, job.config_hash, exc, job.name)
        if stopped is None:
            raise
        return stopped
    try:
        cfg = study.config.from_mapping(job.config, where=f"run {job.name}")
    except Exception as exc:  # noqa: BLE001 - a bad job is a failed run, not a dead worker
        return RunResult(job.name, "failed", error=f"{type(exc).__name__}: {exc}")
    tracking = None
    if job.tracking:
        from sweeplab.track.config import TrackingConfig

        tracking = TrackingConfig(**job.tracking)
    return execute_run(study, cfg, run_dir, cli=job.cli, resume=True, tracking=tracking,
                       run_name=job.name)
