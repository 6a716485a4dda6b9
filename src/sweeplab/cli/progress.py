"""Live progress of a grid: a rich bar on a terminal, plain lines otherwise.

Shows done / failed / running counts and an ETA from the rate of runs finished in this
session (runs skipped as already done do not distort it).
"""

from __future__ import annotations

import time
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sweeplab.core.rundir import RunResult
from sweeplab.execute.job import Job


def _fmt_eta(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    return str(timedelta(seconds=int(round(seconds))))


class GridProgress:
    """Counts and ETA of a grid; use as a context manager around the executor's run."""

    def __init__(self, total: int, already_done: int, workers: int, console: Console):
        self.total = total
        self.done = already_done
        self.failed = 0
        self.interrupted = 0
        self.running = 0
        self.session_finished = 0
        self.workers = max(1, workers)
        self.console = console
        self.started = time.monotonic()
        self.live = console.is_terminal
        self._progress: Progress | None = None
        self._task = None

    def eta(self) -> float | None:
        """Seconds left, from this session's throughput."""
        remaining = self.total - self.done - self.failed - self.interrupted
        if self.session_finished == 0:
            return None
        rate = self.session_finished / (time.monotonic() - self.started)
        return remaining / rate if rate > 0 else None

    def _status(self) -> str:
        stopped = f"interrupted {self.interrupted}  " if self.interrupted else ""
        return (f"done {self.done}  failed {self.failed}  {stopped}running {self.running}  "
                f"ETA {_fmt_eta(self.eta())}")

    def __enter__(self) -> GridProgress:
        if self.live:
            self._progress = Progress(
                TextColumn("[bold]grid"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                console=self.console, transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "grid", total=self.total, completed=self.done, status=self._status())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def start(self, job: Job) -> None:
        self.running += 1
        self._refresh()

    def finish(self, job: Job, result: RunResult) -> None:
        self.running = max(0, self.running - 1)
        self.session_finished += 1
        if result.state == "done":
            self.done += 1
        elif result.state == "interrupted":
            self.interrupted += 1
        else:
            self.failed += 1
        if self.live:
            if result.state != "done":
                self._progress.console.print(f"[red]{result.state}[/red] {job.name}: "
                                             f"{result.error}")
        else:
            n = self.done + self.failed + self.interrupted
            self.console.print(
                f"[{n:>{len(str(self.total))}}/{self.total}] {result.state:<6} {job.name} "
                f"({result.duration_s:.1f}s)  {self._status()}",
                highlight=False, soft_wrap=True,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task,
                                  completed=self.done + self.failed + self.interrupted,
                                  status=self._status())
