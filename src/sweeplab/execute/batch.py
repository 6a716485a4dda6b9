"""Batched runs: compatible runs of a grid trained as one computation in one process.

Grids of small models are mostly per-run overhead: the interpreter, the imports, and
the Python cost of each tiny tensor operation. A study that provides ``batch_key`` and
``run_batch`` (see :class:`~sweeplab.core.registry.Study`) gets runs with equal keys
stacked along a leading batch dimension. The framework's part is here:

- :func:`batch_units` splits a grid's jobs into units: a batch per group of equal keys
  (split so every worker gets a share), and every other job alone. A run that resumes
  from a checkpoint always runs alone.
- :func:`run_batch_jobs` runs a unit in a worker: each run gets its own directory,
  status, log, metric files and trackers exactly as when alone; the study's
  ``run_batch`` fills them; a run whose outcome is an exception fails alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from sweeplab.core.rundir import RunResult, can_resume, make_run_subdirs
from sweeplab.execute.job import Job

MAX_BATCH = 512
"""Most runs in one batch (memory grows with it; speed stops growing well before)."""


def batch_units(jobs: Sequence[Job], workers: int, max_batch: int = MAX_BATCH) -> list[list[Job]]:
    """Split ``jobs`` into units: batches of equal ``batch_key`` and singletons.

    A group of ``n`` compatible jobs is cut into ``min(workers, n)`` nearly equal batches
    (more when a batch would exceed ``max_batch``), so every worker has work.
    """
    return split_groups(group_jobs(jobs), workers, max_batch)


def group_jobs(jobs: Sequence[Job]) -> list[list[Job]]:
    """Jobs of equal ``(study, batch_key)`` together, in order of first appearance; a job
    without a key, or with a checkpoint to resume from (it resumes alone), on its own."""
    groups: dict[tuple[str, str], list[Job]] = {}
    units: list[list[Job]] = []
    for job in jobs:
        if job.batch_key is None or can_resume(job.run_dir, job.config_hash):
            units.append([job])
            continue
        key = (job.study, job.batch_key)
        if key not in groups:
            groups[key] = []
            units.append(groups[key])
        groups[key].append(job)
    return units


def split_groups(groups: Sequence[list[Job]], workers: int,
                 max_batch: int = MAX_BATCH) -> list[list[Job]]:
    """Cut each group of :func:`group_jobs` into ``min(workers, n)`` nearly equal batches
    (more when a batch would exceed ``max_batch``)."""
    out: list[list[Job]] = []
    for unit in groups:
        n = len(unit)
        parts = max(min(workers, n), math.ceil(n / max_batch))
        size = math.ceil(n / parts)
        out.extend(unit[i:i + size] for i in range(0, n, size))
    return out


def run_batch_jobs(jobs: Sequence[Job]) -> list[RunResult]:
    """Run ``jobs`` (one study, equal batch keys, no checkpoints) as one batch.

    Never raises for a run's failure: a bad config, the study's exception for one run,
    or an exception of the whole batch all become ``failed`` results. An interruption
    (Ctrl-C, SIGTERM) is recorded in every run, then re-raised. A full disk met while
    the runs start interrupts every run of the batch.
    """
    from sweeplab.core.disk import disk_full_file
    from sweeplab.core.threads import limit_threads
    from sweeplab.execute.single import finish_done, finish_failed, record_disk_full, start_run
    from sweeplab.track.config import TrackingConfig

    limit_threads(max(job.threads for job in jobs))
    results: dict[str, RunResult] = {}
    try:
        study = jobs[0].resolve_study()
    except Exception as exc:  # noqa: BLE001 - a study that cannot be found fails its runs
        return [RunResult(j.name, "failed", error=f"cannot import the study: {exc}")
                for j in jobs]
    cfgs, runnable = [], []
    for job in jobs:
        try:
            cfgs.append(study.config.from_mapping(job.config, where=f"run {job.name}"))
            runnable.append(job)
        except Exception as exc:  # noqa: BLE001 - a bad job is a failed run
            results[job.name] = RunResult(job.name, "failed", error=f"{type(exc).__name__}: "
                                                                     f"{exc}")
    runs = []
    try:
        for i, (job, cfg) in enumerate(zip(runnable, cfgs)):
            make_run_subdirs(Path(job.run_dir))
            tracking = TrackingConfig(**job.tracking) if job.tracking else None
            runs.append(start_run(study, cfg, Path(job.run_dir), cli=job.cli,
                                  tracking=tracking, run_name=job.name,
                                  logger_name=f"sweeplab.run.{i}"))
    except OSError as exc:
        if disk_full_file(exc) is None:
            raise
        for job, run in zip(runnable, runs):
            results[job.name] = finish_failed(run, exc)
        for job, cfg in zip(runnable[len(runs):], cfgs[len(runs):]):
            results[job.name] = record_disk_full(Path(job.run_dir), cfg.config_hash(), exc,
                                                 job.name)
        return [results[job.name] for job in jobs]
    for run in runs:
        run.ctx.logger.info("trained in a batch of %d runs", len(runs))
    try:
        outcomes = study.run_batch(cfgs, [run.ctx for run in runs])
        if len(outcomes) != len(runs):
            raise RuntimeError(f"run_batch returned {len(outcomes)} outcomes for "
                               f"{len(runs)} runs")
    except BaseException as exc:  # noqa: BLE001 - the whole batch failed: every run records it
        for job, run in zip(runnable, runs):
            results[job.name] = finish_failed(run, exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return [results[job.name] for job in jobs]
    for job, run, outcome in zip(runnable, runs, outcomes):
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            r = finish_done(run, outcome or {})
        except Exception as exc:  # noqa: BLE001 - this run's failure, not its batch-mates'
            r = finish_failed(run, exc)
        results[job.name] = r
    return [results[job.name] for job in jobs]
