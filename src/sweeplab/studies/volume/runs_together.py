"""Several minima-volume runs whose models train as one batch: :func:`run_batch`.

The grid groups runs of equal :func:`.batch_keys.batch_key` (the seeds of a grid, say)
and hands them here together. Each run does what it does alone, in three phases:

1. its data and split (``Pipeline.open``, the split unit);
2. training: every run's models not yet current train in one
   :func:`.batched.train_runs_together` call, where :func:`.batched.plan` finds that
   batching pays for this model on this device (said in every run's training log); else
   each run trains its models as it does alone (:meth:`.pipeline.Pipeline.train_models`);
3. its remaining stages (perturb, volume, cutoff, test) and final metrics, exactly as
   alone.

A run's failure is its own: an exception while loading its data, in a later stage, or a
model that fails in the batch (retrained alone for the error it raises one by one, as
in a single run's batch) becomes that run's outcome; the other runs go on. Should the
batch itself fail, each run trains its models as alone. A stop signal in the batch
propagates (:class:`~sweeplab.core.context.RunInterrupted`) after every model saved its
partial state; a run that holds partial states (``models/m<m>.partial.pt``) is resumed
alone, its whole pipeline as :func:`.pipeline.run_pipeline` runs it, as the grid resumes
any interrupted run alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sweeplab.core.context import RunContext
from sweeplab.studies.volume.batched import ModelJob, RunModels, train_runs_together
from sweeplab.studies.volume.batched import plan as plan_batch
from sweeplab.studies.volume.config import VolumeConfig
from sweeplab.studies.volume.pipeline import Pipeline, run_pipeline


def has_partials(run_dir: Path) -> bool:
    """Whether a model of the run was stopped mid-training (a partial state is kept)."""
    return any((Path(run_dir) / "models").glob("m*.partial.pt"))


def run_batch(cfgs: list[VolumeConfig], ctxs: list[RunContext]) -> list[Any]:
    """Each run's final metrics, or the exception that failed it, in order."""
    outcomes: list[Any] = [None] * len(cfgs)
    pipes: dict[int, Pipeline] = {}
    for i, (cfg, ctx) in enumerate(zip(cfgs, ctxs, strict=True)):
        try:
            if has_partials(ctx.run_dir) or not cfg.wants("train"):
                if cfg.wants("train"):
                    ctx.train_log.event("train: resuming its partial models alone, "
                                        "not in the batch of runs")
                outcomes[i] = run_pipeline(cfg, ctx)
                continue
            pipe = Pipeline.open(cfg, ctx)
            pipe.split()
            pipes[i] = pipe
        except Exception as exc:  # noqa: BLE001 - this run's failure, not its batch-mates'
            outcomes[i] = exc
    todo = {i: pipe.untrained() for i, pipe in pipes.items()}
    trained = _train_together(pipes, todo)
    for i, pipe in pipes.items():
        if trained.get(i) is not None:
            outcomes[i] = trained[i]
            continue
        try:
            if i not in trained:
                pipe.train_models(todo[i])
            outcomes[i] = pipe.after_train()
        except Exception as exc:  # noqa: BLE001 - this run's failure, not its batch-mates'
            outcomes[i] = exc
    return outcomes


def _train_together(pipes: dict[int, Pipeline],
                    todo: dict[int, list[int]]) -> dict[int, Exception | None]:
    """Train the untrained models of two or more runs as one batch where it pays.

    Returns, for each run whose models were trained (and recorded) here, None or the
    exception that failed its training; the other runs train as alone. A model that
    fails in the batch is retrained alone by its run
    (:meth:`.pipeline.Pipeline.keep_trained`), whose error is then the run's.
    """
    ids = [i for i in pipes if todo[i] and pipes[i].cfg.batch != "off"]
    if len(ids) < 2:
        return {}
    parts = {i: pipes[i].models_to_train(todo[i]) for i in ids}
    first, _, _ = parts[ids[0]]
    jobs = [ModelJob(job.m, job.size) for i in ids for job in parts[i][0].jobs]
    chosen = plan_batch(first.cfg, first.x, first.y, jobs, first.make_model)
    for i in ids:
        pipes[i].ctx.train_log.event(f"train: {chosen.describe()} (the models of "
                                     f"{len(ids)} runs)")
    if not chosen.pays:
        return {}
    models: list[RunModels] = [parts[i][0] for i in ids]
    started = time.perf_counter()
    try:
        outcomes = train_runs_together(models)
    except Exception as exc:  # noqa: BLE001 - the batch failed: each run trains alone
        for i in ids:
            pipes[i].ctx.train_log.event(f"train: the batch of runs failed "
                                         f"({type(exc).__name__}: {exc}); training alone")
        return {}
    seconds = time.perf_counter() - started
    what = f"one batch of {len(jobs)} models of {len(ids)} runs"
    done: dict[int, Exception | None] = {}
    for i, run_outcomes in zip(ids, outcomes, strict=True):
        models_i, x, y = parts[i]
        done[i] = None
        try:
            pipes[i].keep_trained(models_i, x, y, run_outcomes, seconds, what)
        except Exception as exc:  # noqa: BLE001 - this run's failure, not its batch-mates'
            done[i] = exc
    return done
