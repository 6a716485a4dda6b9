"""Where a grid runs when no executor is named: in the driver (inline) or on workers (local).

Starting a pool of warm workers costs seconds before the first run (an interpreter per
worker, the imports of the study and torch); running in the driver costs nothing extra
but gives up parallelism. Issue 17 measured both on 2 cores: 12 runs of 300 epochs took
4.6 s inline and 10.0 s on the local pool. So the driver runs the grid itself when
parallel work cannot pay for the start-up, and spawns workers otherwise:

1. nothing to run, one job slot (``--jobs 1``, or one core), or one run: inline;
2. an expected amount of work whose parallel saving, ``work x (1 - 1/p)`` with ``p``
   the units that can go in parallel (a batched group of runs is cut into one batch
   per worker, as the local executor runs it), is under :data:`STARTUP_S`: inline;
3. otherwise (including work of unknown size): local, with the job slots as workers.

A single batched group is split too: a measured 10-run CPU grid of one batch key (small
MLPs trained together, then stages that are not batched) took 215 s as one batch in the
driver (215 s of CPU) and 118 s as two batches of five on 2 workers (222 s of CPU).

The expected work (:func:`describe_work`) comes from the grid folder when runs of it
have finished before (their mean ``duration_s`` per run to do), else from the study's
``cost(cfg)`` hint summed over the units to do (a batched unit counts as its costliest
run: its runs train as one computation), else it is unknown. :func:`choose_executor`
itself is a pure function of those numbers, so the choice is deterministic and tested
branch by branch; ``--executor`` (``run_grid(executor=...)``) bypasses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sweeplab.core.grid import spec_study
from sweeplab.core.rundir import read_status
from sweeplab.execute.batch import group_jobs, split_groups
from sweeplab.execute.sweep import GridPlan

STARTUP_S = 5.0
"""Seconds a pool of workers costs before its first run on a small machine (spawn,
imports): parallelism that saves less than this is not worth starting workers for."""


@dataclass(frozen=True)
class Work:
    """What a grid has left to do, as the choice sees it."""

    runs: int
    """Runs to do."""
    units: int
    """Units they form: batched computations and runs alone (``runs`` when unbatched)."""
    expected_s: float | None = None
    """Expected seconds of all of it in one warm process (None: unknown)."""
    splits: int | None = None
    """Units the local executor would run them in on the given job slots (a batched
    group is cut into one batch per worker); None: as many as ``units``."""


@dataclass(frozen=True)
class Choice:
    """The executor chosen (``inline`` or ``local``), its workers and why, in few words."""

    kind: str
    reason: str
    workers: int = 1


def choose_executor(work: Work, slots: int) -> Choice:
    """Inline or local for ``work`` given ``slots`` parallel job slots (see the module)."""
    if work.runs == 0:
        return Choice("inline", "nothing to run")
    if slots <= 1:
        return Choice("inline", "one job slot")
    if work.runs == 1:
        return Choice("inline", "one run")
    parallel = min(slots, work.units if work.splits is None else work.splits)
    if parallel <= 1:
        return Choice("inline", "one batched unit")
    if work.expected_s is not None and work.expected_s * (1 - 1 / parallel) < STARTUP_S:
        return Choice("inline", f"~{work.expected_s:.0f}s of work")
    size = "" if work.expected_s is None else f", ~{work.expected_s:.0f}s of work"
    return Choice("local", f"{work.runs} runs{size}", workers=slots)


def describe_work(plan: GridPlan, batch: bool, slots: int = 1) -> Work:
    """The :class:`Work` of ``plan``'s runs to do (``batch``: compatible runs share a unit).

    The expected seconds: the mean ``duration_s`` of the grid's finished runs times the
    runs to do (when resuming; an overestimate where those runs were batched), else the
    sum of the study's ``cost(cfg)`` over the runs to do, else None.
    """
    todo = plan.todo
    groups = group_jobs(todo) if batch else [[job] for job in todo]
    units = split_groups(groups, workers=1)
    splits = len(split_groups(groups, workers=max(1, slots)))
    return Work(len(todo), len(units), _expected_s(plan, units), splits)


def _expected_s(plan: GridPlan, units: list[list]) -> float | None:
    """Past runs' mean duration per run to do; else the cost hint, a batched unit counted
    as its costliest member (its runs train as one computation, in about one run's time:
    docs/batched.md); else None."""
    if not plan.todo:
        return 0.0
    past = [s.duration_s for s in (read_status(job.run_dir) for job in plan.jobs)
            if s.state == "done" and s.duration_s is not None]
    if past:
        return sum(past) / len(past) * len(plan.todo)
    study = spec_study(plan.spec)
    if study.cost is None:
        return None
    try:
        return sum(max(study.cost(study.config.from_mapping(job.config)) for job in unit)
                   for unit in units)
    except Exception:  # noqa: BLE001 - a broken hint means the work is of unknown size
        return None
