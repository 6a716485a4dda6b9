"""The inline executor: every job in this process, one after another.

For debugging (breakpoints and tracebacks work as usual) and for tiny grids, where a
pool's start-up would cost more than it saves; submitit's DebugExecutor plays this role.
"""

from __future__ import annotations

from collections.abc import Sequence

from sweeplab.execute.base import Executor, OnDone, OnStart
from sweeplab.execute.job import Job, run_job


class InlineExecutor(Executor):
    """Runs jobs sequentially in the calling process."""

    name = "inline"

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        for job in jobs:
            on_start(job)
            on_done(job, run_job(job))
