"""The inline executor: every job in this process, one after another.

For debugging (breakpoints and tracebacks work as usual) and for tiny grids, where a
pool's start-up would cost more than it saves; submitit's DebugExecutor plays this role.
"""

from __future__ import annotations

from collections.abc import Sequence

from sweeplab.execute.base import Executor, OnDone, OnStart, disk_full_stop
from sweeplab.execute.batch import batch_units
from sweeplab.execute.job import Job
from sweeplab.execute.worker import run_jobs


class InlineExecutor(Executor):
    """Runs jobs sequentially in the calling process (compatible runs batched if ``batch``)."""

    name = "inline"

    def __init__(self, batch: bool = False):
        self.batch = batch

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        units = batch_units(jobs, workers=1) if self.batch else [[job] for job in jobs]
        for unit in units:
            for job in unit:
                on_start(job)
            results = run_jobs(unit)
            for job, result in zip(unit, results):
                on_done(job, result)
            if (full := disk_full_stop(results)) is not None:
                raise full
