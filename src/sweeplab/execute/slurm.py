"""The Slurm executor: a grid's jobs as ONE Slurm job array, submitted with submitit.

submitit pickles :func:`~sweeplab.execute.worker.run_job` (by reference) with each job, writes an
sbatch script that runs ``python -m submitit.core._submit`` with this very interpreter
(``sys.executable``) on every array task, and pickles each task's return value next to its
logs in ``folder``. This module submits, watches and collects:

- *Watching* asks ``squeue --states=all`` for the array's tasks, once per poll for all of them,
  rather than submitit's own watcher, which asks ``sacct``: ``sacct`` needs Slurm's accounting
  database (slurmdbd), which small clusters and the one-node test cluster of
  ``scripts/slurm/start_cluster.sh`` do not run, and without it submitit sees every task as
  UNKNOWN forever, so a task killed before writing its result would hang the grid.
  ``squeue --states=all`` shows finished tasks too (for ``MinJobAge``, 300 s by default,
  far longer than a poll); a task no longer listed at all has left the queue.
- *Collecting*: a task's result pickle means it ended on its own (``job.result()`` returns
  the :class:`~sweeplab.core.rundir.RunResult`, or raises the task's own traceback); a task
  that ended without one (cancelled, timed out, out of memory, node failure) becomes a
  ``failed`` result naming its Slurm state and reason, never an exception.
"""

from __future__ import annotations

import functools
import importlib
import logging
import math
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeplab.core.rundir import RunResult
from sweeplab.errors import SweeplabError
from sweeplab.execute.base import Executor, OnDone, OnStart
from sweeplab.execute.job import Job
from sweeplab.execute.worker import run_job

log = logging.getLogger(__name__)

RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "SUSPENDED"})
"""Slurm states of a task that has started and not yet ended."""
WAITING_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING",
     "RESV_DEL_HOLD", "SPECIAL_EXIT", "STOPPED"}
)
"""Slurm states of a task that has not ended (it may run, or run again)."""
LEFT_QUEUE = "LEFT_QUEUE"
"""Our name for a task that squeue no longer lists (it ended longer than MinJobAge ago)."""
SELF_ENDED_STATES = frozenset({"COMPLETED", "FAILED"})
"""States in which the task's own process exited, so its result pickle should be there
(a shared file system may show it late: wait ``result_grace_s`` for it)."""


class SlurmUnavailableError(SweeplabError, RuntimeError):
    """The Slurm executor cannot run here: submitit or Slurm's client commands are missing."""


class SlurmSubmitError(SweeplabError, RuntimeError):
    """sbatch refused the job array (an unknown partition, a time over the limit, ...)."""


@dataclass(frozen=True)
class TaskState:
    """One array task as ``squeue`` shows it: its Slurm state and the reason Slurm gives."""

    state: str
    reason: str = ""


def _require_submitit() -> Any:
    try:
        import submitit
    except ImportError as exc:
        raise SlurmUnavailableError(
            "the Slurm executor needs submitit: pip install 'sweeplab[slurm]'"
        ) from exc
    return submitit


def run_task(job: Job, imports: tuple[str, ...] = ()) -> RunResult:
    """What each array task runs: import ``imports`` (modules registering studies that are
    neither built in nor entry points), then :func:`run_job`."""
    for module in imports:
        importlib.import_module(module)
    return run_job(job)


def queue_states(job_id: str, timeout_s: float = 60.0) -> dict[str, TaskState] | None:
    """Every task of Slurm job ``job_id`` that slurmctld still lists, by task id (``123_4``).

    ``{}`` when Slurm no longer knows the job; ``None`` when ``squeue`` failed otherwise
    (slurmctld busy or down): nothing can be concluded from that poll.
    """
    cmd = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r",
           f"--jobs={job_id}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("squeue failed (%s); will ask again", exc)
        return None
    if proc.returncode != 0:
        if "invalid job id" in proc.stderr.lower():
            return {}
        log.warning("squeue failed (%s); will ask again", proc.stderr.strip())
        return None
    states: dict[str, TaskState] = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = TaskState(parts[1], "" if parts[2] == "None" else parts[2])
    return states


class SlurmExecutor(Executor):
    """Runs every job of a grid as one task of a single Slurm job array (via submitit).

    ``time`` is each task's limit in minutes; ``cpus_per_task`` defaults to the largest
    ``threads`` among the jobs; ``mem_gb`` None leaves memory to the cluster's default;
    ``array_parallelism`` caps how many tasks run at once (default: no cap of our own);
    ``folder`` holds submitit's scripts, pickles and logs (default ``<grid_dir>/.submitit``,
    the grid directory being the common parent of the jobs' run directories);
    ``sbatch_extra`` adds sbatch options (``{"qos": "high", "account": "lab"}``); ``setup``
    lines run in the batch script before Python (``module load ...``, ``export ...``);
    ``imports`` are modules each task imports before running its job, for studies
    registered by a module that is neither built in nor an entry point. ``poll_s`` is the
    interval between two looks at the queue.
    """

    name = "slurm"

    def __init__(
        self,
        partition: str | None = None,
        time: int = 60,
        cpus_per_task: int | None = None,
        mem_gb: float | None = None,
        array_parallelism: int | None = None,
        folder: str | Path | None = None,
        sbatch_extra: Mapping[str, Any] | None = None,
        setup: Sequence[str] = (),
        imports: Sequence[str] = (),
        poll_s: float = 5.0,
        result_grace_s: float = 15.0,
    ):
        self._submitit = _require_submitit()
        missing = [cmd for cmd in ("sbatch", "squeue", "scancel", "srun") if not shutil.which(cmd)]
        if missing:
            raise SlurmUnavailableError(
                f"Slurm client commands not found on PATH: {', '.join(missing)}"
            )
        self.partition = partition
        self.time = time
        self.cpus_per_task = cpus_per_task
        self.mem_gb = mem_gb
        self.array_parallelism = array_parallelism
        self.folder = Path(folder) if folder is not None else None
        self.sbatch_extra = dict(sbatch_extra or {})
        self.setup = list(setup)
        self.imports = tuple(imports)
        self.poll_s = poll_s
        self.result_grace_s = result_grace_s

    # -- submission ------------------------------------------------------------------------

    def log_folder(self, jobs: Sequence[Job]) -> Path:
        """Where submitit keeps its files for ``jobs``."""
        if self.folder is not None:
            return self.folder
        run_dirs = [str(Path(job.run_dir).absolute()) for job in jobs]
        common = Path(os.path.commonpath(run_dirs))
        grid_dir = common.parent if len(run_dirs) == 1 else common
        return grid_dir / ".submitit"

    def _parameters(self, jobs: Sequence[Job]) -> dict[str, Any]:
        studies = sorted({job.study for job in jobs})
        params: dict[str, Any] = {
            "job_name": f"sweeplab-{studies[0]}" if len(studies) == 1 else "sweeplab",
            "time": self.time,
            "cpus_per_task": self.cpus_per_task or max(job.threads for job in jobs),
            "array_parallelism": self.array_parallelism or len(jobs),
        }
        if self.partition:
            params["partition"] = self.partition
        if self.mem_gb is not None:
            params["mem"] = f"{math.ceil(self.mem_gb * 1024)}M"
        if self.setup:
            params["setup"] = list(self.setup)
        if self.sbatch_extra:
            params["additional_parameters"] = dict(self.sbatch_extra)
        return params

    def submit(self, jobs: Sequence[Job]) -> list[Any]:
        """Submit ``jobs`` as one job array; submitit's job handles, in the jobs' order."""
        executor = self._submitit.SlurmExecutor(folder=self.log_folder(jobs), max_num_timeout=0)
        try:
            executor.update_parameters(**self._parameters(jobs))
        except ValueError as exc:
            raise SlurmSubmitError(f"bad sbatch parameters: {exc}") from None
        task = functools.partial(run_task, imports=self.imports)
        try:
            return list(executor.map_array(task, list(jobs)))
        except Exception as exc:  # noqa: BLE001 - sbatch's own message says what is wrong
            raise SlurmSubmitError(f"sbatch refused the job array: {exc}") from None

    # -- watching and collecting -----------------------------------------------------------

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        """Submit ``jobs`` as one array and report each start and result as Slurm runs them.

        On any exception escaping here (Ctrl-C above all) the tasks not yet collected are
        cancelled with ``scancel`` before it propagates.
        """
        if not jobs:
            return
        handles = self.submit(jobs)
        array_id = handles[0].job_id.split("_")[0]
        log.info("submitted %d jobs as Slurm job %s (logs in %s)",
                 len(jobs), array_id, handles[0].paths.folder)
        pending = dict(enumerate(handles))
        started: set[int] = set()
        ended_at: dict[int, float] = {}
        try:
            while pending:
                states = queue_states(array_id)
                for index, handle in list(pending.items()):
                    job = jobs[index]
                    task = _task_state(handle.job_id, states)
                    if task is not None and task.state not in WAITING_STATES | RUNNING_STATES:
                        ended_at.setdefault(index, time.monotonic())
                    if index not in started and task is not None and task.state in RUNNING_STATES:
                        started.add(index)
                        on_start(job)
                    result = self._outcome(job, handle, task, ended_at.get(index))
                    if result is None:
                        continue
                    if index not in started:  # ended between two polls: never seen running
                        started.add(index)
                        on_start(job)
                    del pending[index]
                    on_done(job, result)
                if pending:
                    time.sleep(self.poll_s)
        except BaseException:
            self._cancel([pending[i] for i in sorted(pending)])
            raise

    def _outcome(
        self, job: Job, handle: Any, task: TaskState | None, ended_at: float | None
    ) -> RunResult | None:
        """The job's result if its task has ended, else None (still queued or running, or
        ended on its own a moment ago and its result pickle may still be on its way)."""
        if handle.paths.result_pickle.exists():
            return self._collect(job, handle)
        if task is None or ended_at is None:
            return None
        waited = time.monotonic() - ended_at
        if task.state in SELF_ENDED_STATES | {LEFT_QUEUE} and waited < self.result_grace_s:
            return None
        return self._died(job, handle, task)

    def _collect(self, job: Job, handle: Any) -> RunResult:
        """The task's own result, or its traceback as a failed result."""
        try:
            result = handle.result()
        except Exception as exc:  # noqa: BLE001 - the task raised: its failure is data
            return RunResult(
                job.name, "failed",
                error=f"{_last_line(str(exc))} (Slurm task {handle.job_id}; "
                      f"log {handle.paths.stderr})",
            )
        if not isinstance(result, RunResult):
            return RunResult(job.name, "failed", error=f"Slurm task {handle.job_id} returned "
                             f"{type(result).__name__}, not a RunResult")
        return result

    def _died(self, job: Job, handle: Any, task: TaskState) -> RunResult:
        """A failed result for a task that ended without a result pickle."""
        reason = f" ({task.reason})" if task.reason else ""
        error = f"Slurm task {handle.job_id} ended {task.state}{reason} without a result"
        stderr = _slurm_says(handle.paths.stderr)
        if stderr:
            error += f": {stderr}"
        return RunResult(job.name, "failed", error=f"{error} (log {handle.paths.stderr})")

    def _cancel(self, handles: Sequence[Any]) -> None:
        """Cancel the given array tasks with one ``scancel``; never raises."""
        if not handles:
            return
        ids = [handle.job_id for handle in handles]
        log.warning("cancelling %d outstanding Slurm tasks", len(ids))
        try:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("scancel failed (%s); cancel by hand: scancel %s", exc, " ".join(ids))


def _task_state(task_id: str, states: dict[str, TaskState] | None) -> TaskState | None:
    """The task's state in this poll: None if the poll failed, LEFT_QUEUE if not listed."""
    if states is None:
        return None
    return states.get(task_id, TaskState(LEFT_QUEUE, "no longer listed by squeue"))


def _last_line(text: str) -> str:
    """The line naming the exception in submitit's report of a task's traceback.

    submitit puts the traceback between two rules of dashes; the last line inside is the
    exception (``RuntimeError: ...``). Without rules, the text's last non-empty line.
    """
    lines = [line.strip() for line in text.splitlines()]
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    body = lines[rules[0] + 1 : rules[1]] if len(rules) >= 2 else lines
    body = [line for line in body if line]
    return body[-1] if body else text.strip()


def _slurm_says(path: Path) -> str:
    """What Slurm wrote in a task's log about its end, or the log's last line ('' if none).

    slurmstepd marks a kill with ``*** JOB 12 ON node CANCELLED AT ... ***`` (or ``DUE TO
    TIME LIMIT``, ...); other slurmstepd errors (an OOM kill) come next in preference.
    """
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    for wanted in (lambda ln: "***" in ln, lambda ln: ln.startswith("slurmstepd")):
        found = [line for line in lines if wanted(line)]
        if found:
            return found[-1].split(": error: ", 1)[-1]
    return lines[-1] if lines else ""
