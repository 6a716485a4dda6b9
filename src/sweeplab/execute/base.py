"""The executor interface: *where* jobs run, apart from *what* runs (the planner).

An executor receives plain :class:`~sweeplab.execute.job.Job` objects, runs each with
:func:`~sweeplab.execute.worker.run_job` somewhere (this process, a local pool of warm
workers, a Slurm job array) and reports back through two callbacks, so progress bars,
``master.csv`` and resume logic stay identical whatever the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from sweeplab.core.disk import DiskFullError
from sweeplab.core.rundir import RunResult
from sweeplab.execute.job import Job

OnStart = Callable[[Job], None]
OnDone = Callable[[Job, RunResult], None]


class Executor(ABC):
    """Runs jobs and reports each start and each result (in completion order)."""

    name: str = "executor"
    reason: str = ""
    """Why the grid's driver chose this executor, in a few words ('' when it was named)."""

    @abstractmethod
    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        """Run every job; call ``on_start(job)`` when it starts and ``on_done(job, result)``
        when it ends. Blocks until all are done. A failing run is a ``failed`` result, never
        an exception; KeyboardInterrupt propagates after stopping outstanding work.

        A result with ``disk_full`` stops the executor: it starts nothing more, stops
        the runs in flight (each reported, ``interrupted`` unless it finished), then
        raises :class:`~sweeplab.core.disk.DiskFullError` (see :func:`disk_full_stop`).
        The jobs never started stay pending."""


def disk_full_stop(results: Iterable[RunResult]) -> DiskFullError | None:
    """The error that stops an executor if one of ``results`` met a full disk."""
    for result in results:
        if result.disk_full is not None:
            return DiskFullError(result.disk_full)
    return None
