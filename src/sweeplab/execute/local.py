"""The local executor: a pool of warm worker processes on this machine.

Built on :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method
(forking a process that has started torch's or OpenMP's threads is unsafe). Each worker
imports the study once and then runs job after job, so the interpreter start and the
torch import (~1-3 s) are paid once per worker, not once per run. Each worker limits
torch/BLAS to ``threads`` threads so ``workers x threads`` never oversubscribes the cores.

A worker that dies (segfault, OOM kill, ``kill -9``) breaks the whole pool. The jobs in
flight then are suspects: each runs again alone in a one-worker pool, where a crash can
only be its own, so the culprit is reported ``failed`` and its innocent siblings finish.
The jobs not yet started go on in a fresh pool. With ``batch``, compatible runs travel
as one unit and train as one batched computation (:mod:`sweeplab.execute.batch`); a
batch whose worker died has each of its runs re-run alone.

When the driver is interrupted (Ctrl-C, SIGTERM) it passes SIGTERM on to the workers:
a study in its training loop saves a checkpoint and stops, and the grid's next resume
continues it from there. A driver that dies without a word (``kill -9``) cannot: each
worker watches its driver and, orphaned, stops the same way by itself and exits.

A run that meets a full disk stops the pool the same way: no new run starts, the runs
in flight are stopped and reported (``interrupted``, unless they finished), and
:class:`~sweeplab.core.disk.DiskFullError` ends the executor.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import psutil

from sweeplab.core.disk import DiskFullError
from sweeplab.core.rundir import RunResult
from sweeplab.execute.base import Executor, OnDone, OnStart, disk_full_stop
from sweeplab.execute.batch import batch_units
from sweeplab.execute.job import Job
from sweeplab.execute.worker import run_jobs


def default_workers() -> int:
    """Cores this process may use (respects CPU affinity, e.g. under Slurm or taskset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(threads: int, preload: tuple[str, ...], driver: int | None = None,
                 refs: tuple[tuple[Any, str], ...] = ()) -> None:
    """Limit threads and import the studies' modules (and their ``warm`` modules: torch,
    ...) before the first job arrives; watch for the death of the ``driver`` process.

    ``refs`` are the (reference, folder) pairs of studies found by reference (a user's
    file or module); one that cannot be resolved here fails its jobs with the reason.
    """
    from sweeplab.core.registry import resolve_study, warm_up
    from sweeplab.core.threads import limit_threads

    limit_threads(threads)
    for module in preload:
        warm_up(module)
    for ref, folder in refs:
        try:
            study = resolve_study(ref, folder or None)
            for name in study.warm:
                importlib.import_module(name)
        except Exception:  # noqa: BLE001, S110 - each of its jobs reports it
            pass
    if driver is not None:
        threading.Thread(target=_watch_driver, args=(driver,), name="sweeplab-orphan-watch",
                         daemon=True).start()


ORPHAN_POLL_S = 0.5
ORPHAN_EXIT_S = 300.0
"""At most this long for an orphaned worker's study to checkpoint before it exits."""

_BUSY = threading.Event()
"""Set while this worker runs a job."""


def _watch_driver(driver: int) -> None:
    """End this worker when its driver dies (``kill -9`` of the driver alone, a crash).

    The pool's queues never tell an orphaned worker: it would finish its run, then wait
    for work forever, and a resumed grid would run the same run beside it. Instead, the
    worker sends itself SIGTERM, so a study in its loop checkpoints and stops as it does
    when the driver passes an interruption on, and exits once no job is running.
    """
    while os.getppid() == driver:
        time.sleep(ORPHAN_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    deadline = time.monotonic() + ORPHAN_EXIT_S
    while _BUSY.is_set() and time.monotonic() < deadline:
        time.sleep(ORPHAN_POLL_S)
    os._exit(1)


def _run_unit(unit: list[Job]) -> list[RunResult]:
    """:func:`run_jobs` in a worker, marked busy for the orphan watch."""
    _BUSY.set()
    try:
        return run_jobs(unit)
    finally:
        _BUSY.clear()


STOP_GRACE_S = 30.0
"""How long an interrupted driver waits for its workers' checkpoints before killing them."""


SPAWNED_MARK = "--multiprocessing-fork"
"""In the command line of every process multiprocessing's spawn start method creates."""


def _workers(pool: ProcessPoolExecutor) -> list[psutil.Process]:
    """The pool's worker processes (a snapshot; the pool may be changing them): this
    process's children that multiprocessing spawned, less its resource tracker."""
    workers = []
    for child in psutil.Process().children():
        try:
            if SPAWNED_MARK in child.cmdline():
                workers.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return workers


def _stop_workers(processes: list[psutil.Process]) -> None:
    """Pass an interruption on: SIGTERM makes each running study checkpoint and stop.

    (Ctrl-C reaches the workers by itself; a ``kill`` of this process does not.)
    """
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGTERM)


def _join(processes: list[psutil.Process], timeout: float) -> None:
    """Wait up to ``timeout`` s in all for the workers to end; kill the ones that do not.

    Not ``shutdown(wait=True)``: after workers die mid-task, the pool's manager thread
    can wait forever, and an interrupted driver must end. Ended workers are left for the
    pool to reap (a wait here would reap them under its feet).
    """
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _running(p)]
        if alive:
            time.sleep(0.05)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


STOP_EXIT_S = 5.0
"""How long stopped workers, their runs ended, have to exit before they are killed."""

WORKER_DIED = "worker process died while running this job (crash, OOM kill or kill -9)"


def _stop_in_flight(
    pool: ProcessPoolExecutor, running: dict[Future, list[Job]], full: DiskFullError,
    on_done: OnDone,
) -> None:
    """Stop the runs in flight after a full disk and report each one.

    As for an interruption: SIGTERM makes each study checkpoint and stop (or ends a
    worker outside a training loop), within :data:`STOP_GRACE_S`; then the workers left
    are killed. A run that finished meanwhile is reported as it ended; any other is
    ``interrupted``, its worker's own record of it kept (the driver's callback marks
    the ones whose worker died before it could).
    """
    processes = _workers(pool)
    _stop_workers(processes)
    wait(running, timeout=STOP_GRACE_S)
    pool.shutdown(wait=False, cancel_futures=True)
    _join(processes, STOP_EXIT_S)
    stopped = f"stopped: {full}"
    for future, unit in running.items():
        try:
            results = future.result(timeout=0)
        except BaseException:  # noqa: BLE001 - a worker ended by the stop, or a run stopped
            results = [RunResult(job.name, "interrupted", error=stopped) for job in unit]
        for job, result in zip(unit, results):
            on_done(job, result)
    running.clear()


class LocalExecutor(Executor):
    """Runs jobs on ``workers`` warm processes, at most ``workers`` at a time."""

    name = "local"

    def __init__(self, workers: int | None = None, threads: int = 1, batch: bool = False):
        self.workers = workers or default_workers()
        self.threads = threads
        self.batch = batch
        self._refs: tuple[tuple[Any, str], ...] = ()

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        preload = tuple(sorted({job.study_module for job in jobs if job.study_module}))
        refs = {json.dumps([job.study_ref, job.study_dir], sort_keys=True, default=str):
                (job.study_ref, job.study_dir) for job in jobs if job.study_ref is not None}
        self._refs = tuple(refs.values())
        started: set[str] = set()
        queue = batch_units(jobs, self.workers) if self.batch else [[job] for job in jobs]
        while queue:
            queue, suspects = self._run_pool(queue, self.workers, preload, started,
                                             on_start, on_done)
            for job in suspects:  # alone in a pool, a crash can only be the job's own
                self._run_pool([[job]], 1, preload, started, on_start, on_done)

    def _run_pool(
        self,
        units: list[list[Job]],
        workers: int,
        preload: tuple[str, ...],
        started: set[str],
        on_start: OnStart,
        on_done: OnDone,
    ) -> tuple[list[list[Job]], list[Job]]:
        """Run ``units`` (a job alone, or a batch) on one pool of ``workers``.

        Returns ``(units not started, suspect jobs)`` if a worker died: the suspects were
        in flight then, and only one of them (if any) caused it. With one worker and one
        job in flight, that job is the culprit and fails.
        """
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(units)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads, preload, os.getpid(), self._refs),
        )
        queue = list(reversed(units))
        running: dict[Future, list[Job]] = {}
        interrupted = False
        try:
            while queue or running:
                while queue and len(running) < workers:
                    unit = queue[-1]
                    try:
                        future = pool.submit(_run_unit, unit)
                    except BrokenProcessPool:  # a worker died since the last wait
                        return self._broken(queue, list(running.values()), workers, on_done)
                    queue.pop()
                    running[future] = unit
                    for job in unit:
                        if job.name not in started:
                            started.add(job.name)
                            on_start(job)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    unit = running.pop(future)
                    try:
                        results = future.result()
                    except BrokenProcessPool:
                        return self._broken(queue, [unit, *running.values()], workers, on_done)
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                        error = f"{type(exc).__name__}: {exc}"
                        results = [RunResult(job.name, "failed", error=error) for job in unit]
                    for job, result in zip(unit, results):
                        on_done(job, result)
                    if (full := disk_full_stop(results)) is not None:
                        interrupted = True
                        _stop_in_flight(pool, running, full, on_done)
                        raise full
        except KeyboardInterrupt:
            interrupted = True
            processes = _workers(pool)
            _stop_workers(processes)
            pool.shutdown(wait=False, cancel_futures=True)
            _join(processes, STOP_GRACE_S)
            raise
        finally:
            if not interrupted:
                pool.shutdown(wait=True, cancel_futures=True)
        return [], []

    @staticmethod
    def _broken(
        queue: list[list[Job]], in_flight: list[list[Job]], workers: int, on_done: OnDone
    ) -> tuple[list[list[Job]], list[Job]]:
        """The pool broke: a lone job in flight is the culprit; else all are suspects."""
        jobs = [job for unit in in_flight for job in unit]
        if workers == 1 and len(jobs) == 1:
            on_done(jobs[0], RunResult(jobs[0].name, "failed", error=WORKER_DIED))
            return list(reversed(queue)), []
        return list(reversed(queue)), jobs
