"""Many implicit-bias runs trained as one batched computation.

A grid of this study is hundreds of tiny runs whose steps cost less than the Python and
torch overhead around them. Runs with the same :func:`batch_key` (same shapes, family of
potential, loss, schedule and dtype) are trained together by :func:`run_batch`: one
stacked mirror-descent step (:mod:`.batched_train`) and one stacked metric pass
(:mod:`.batched_metrics`) serve every run, each with its own seed, lr, p (or beta),
init_scale, data and initialization. Each run's directory gets what
:func:`~sweeplab.studies.implicit_bias.study.run` writes alone: ``dataset.npz``, the same
metric rows at the same epochs, checkpoints of the same layout (so an interrupted batch
resumes run by run through ``run``), ``directions.json``, figures, the same final dict,
with values equal up to floating-point summation order (about 1e-15 relative in float64).

Baselines are computed once per distinct problem (:mod:`.shared_baselines`). A run that
fails (a non-finite loss, a failing figure) is dropped from the batch with its
exception; the others go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sweeplab.core.context import RunContext, interruptible_batch
from sweeplab.data import Dataset, load_dataset
from sweeplab.data.config import DataConfig
from sweeplab.errors import NonFiniteError
from sweeplab.studies.implicit_bias import outputs
from sweeplab.studies.implicit_bias.baselines import Baselines, compute_baselines
from sweeplab.studies.implicit_bias.batch_keys import batch_key
from sweeplab.studies.implicit_bias.batched_metrics import BatchedMetricTracker, TrackedRun
from sweeplab.studies.implicit_bias.batched_train import BatchedMirrorDescent
from sweeplab.studies.implicit_bias.config import ImplicitBiasConfig
from sweeplab.studies.implicit_bias.model import DeepLinearNetwork
from sweeplab.studies.implicit_bias.potentials import Potential, make_potential
from sweeplab.studies.implicit_bias.shared_baselines import (
    linear_md_directions,
    lp_max_margin_after,
)
from sweeplab.studies.implicit_bias.stall import warn_if_stalled

__all__ = ["batch_key", "run_batch"]

log = logging.getLogger(__name__)

Result = dict[str, float] | BaseException


def run_batch(cfgs: Sequence[ImplicitBiasConfig], ctxs: Sequence[RunContext]) -> list[Result]:
    """Run ``cfgs[i]`` in ``ctxs[i]`` for every i, batching runs of equal :func:`batch_key`.

    Returns, per run, the final dict ``run`` returns, or the exception that failed it
    (returned, not raised: one run's failure leaves its batch-mates alone). A run that
    cannot be batched (key None, or resuming a checkpoint) runs alone through ``run``.
    An interruption is raised: on a stop signal every run still training is
    checkpointed, and :class:`~sweeplab.core.context.RunInterrupted` (Ctrl-C outside a
    training loop: ``KeyboardInterrupt``) ends the whole batch, for the caller to record
    in every run and re-raise, as ``execute_run`` does for one run.
    """
    results: list[Result | None] = [None] * len(cfgs)
    shared = _Shared()
    groups: dict[tuple, list[int]] = defaultdict(list)
    alone: list[int] = []
    for i, cfg in enumerate(cfgs):
        key = batch_key(cfg)
        if key is None or ctxs[i].resumed_epoch is not None:
            alone.append(i)
        else:
            groups[key].append(i)
    for members in groups.values():
        try:
            _run_group([cfgs[i] for i in members], [ctxs[i] for i in members], members,
                       results, shared)
        except Exception as exc:  # noqa: BLE001 - a failure of the whole group
            for i in members:
                results[i] = exc if results[i] is None else results[i]
        if _interrupted(results):
            break
    for i in alone:
        if _interrupted(results):
            break
        results[i] = _run_alone(cfgs[i], ctxs[i])
    stop = _interrupted(results)
    if stop is not None:
        raise stop
    return results  # type: ignore[return-value] - every run has its outcome


# --------------------------------------------------------------------------- one run's parts


@dataclass(eq=False)
class _Run:
    """One run of the batch: its config, context, data and what training needs."""

    index: int
    cfg: ImplicitBiasConfig
    ctx: RunContext
    data: Dataset
    data_id: int
    potential: Potential
    layers: list[torch.Tensor] = field(default_factory=list)
    init_weights: list[np.ndarray] = field(default_factory=list)
    directions: dict[str, np.ndarray | None] = field(default_factory=dict)
    separable: bool = False
    shuffle: torch.Tensor | None = None
    last: dict[str, float] = field(default_factory=dict)
    row: int = -1
    e2e: np.ndarray | None = None


@dataclass
class _Shared:
    """What runs of a batch share, each computed once: data sets, baselines, linear MD.

    Data ids index ``datasets``; baselines are keyed by (data id, logreg_C), lp
    max-margin directions by that and p, linear MD directions by (data id, potential,
    lr, loss, epochs, dtype). A failure is kept in place of the result, for every run
    that needs it.
    """

    data_ids: dict[tuple, int | Exception] = field(default_factory=dict)
    datasets: list[Dataset] = field(default_factory=list)
    base: dict[tuple, Baselines | Exception] = field(default_factory=dict)
    lp: dict[tuple, Any] = field(default_factory=dict)
    linear: dict[tuple, np.ndarray | NonFiniteError] = field(default_factory=dict)


def _dtype(cfg: ImplicitBiasConfig) -> torch.dtype:
    return torch.float64 if cfg.dtype == "float64" else torch.float32


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.array(array, dtype=np.float64))


def _data_key(cfg: ImplicitBiasConfig) -> tuple:
    """Everything ``load_dataset(cfg, seed=cfg.seed)`` depends on."""
    fields = [(k, getattr(cfg, k)) for k in sorted(DataConfig.model_fields)]
    fields = [(k, str(v) if isinstance(v, Path) else v) for k, v in fields]
    return (*fields, ("seed", cfg.seed if cfg.data_seed is None else None))


def _interrupted(results: Sequence[Result | None]) -> BaseException | None:
    return next((r for r in results if isinstance(r, KeyboardInterrupt)), None)


def _run_alone(cfg: ImplicitBiasConfig, ctx: RunContext) -> Result:
    from sweeplab.studies.implicit_bias.runner import run_one

    try:
        return run_one(cfg, ctx)
    except BaseException as exc:  # noqa: BLE001 - the run's outcome, returned as data
        return exc


# --------------------------------------------------------------------------- a batch


def _run_group(
    cfgs: list[ImplicitBiasConfig],
    ctxs: list[RunContext],
    indices: list[int],
    results: list[Result | None],
    shared: _Shared,
) -> None:
    """Runs of one batch key, from their data to their final dicts, into ``results``."""
    runs = _prepare(cfgs, ctxs, indices, results, shared)
    _baselines(runs, results, shared)
    by_shape: dict[tuple, list[_Run]] = defaultdict(list)
    for run in runs:
        if results[run.index] is None:
            by_shape[run.data.X.shape].append(run)
    for members in by_shape.values():
        if _interrupted(results):
            return
        members.sort(key=lambda r: r.data_id)  # runs of a data set adjacent: one copy
        _linear_md(members, results, shared)
        members = [r for r in members if results[r.index] is None]
        if members:
            _train(members, results, shared)
        for run in members:
            if results[run.index] is None:
                results[run.index] = _finish(run)


def _prepare(cfgs, ctxs, indices, results, shared: _Shared) -> list[_Run]:
    """Load (each distinct data set once), save dataset.npz, initialize every network."""
    runs = []
    for cfg, ctx, index in zip(cfgs, ctxs, indices):
        try:
            key = _data_key(cfg)
            if key not in shared.data_ids:
                try:
                    shared.datasets.append(load_dataset(cfg, seed=cfg.seed))
                    shared.data_ids[key] = len(shared.datasets) - 1
                except Exception as exc:  # noqa: BLE001 - fails the runs of this data only
                    shared.data_ids[key] = exc
            data_id = shared.data_ids[key]
            if isinstance(data_id, Exception):
                raise data_id
            data = shared.datasets[data_id]
            outputs.save_dataset(ctx, data)
            potential = make_potential(cfg.potential, p=cfg.p, beta=cfg.beta)
            gen = torch.Generator().manual_seed(cfg.seed)
            model = DeepLinearNetwork(data.X.shape[1], cfg.L, cfg.width, cfg.init_scale, gen,
                                      _dtype(cfg))
            run = _Run(index, cfg, ctx, data, data_id, potential)
            run.layers = [w.detach().clone() for w in model.layers]
            run.init_weights = model.weights_numpy()
            run.shuffle = torch.Generator().manual_seed(cfg.seed).get_state()
            runs.append(run)
        except Exception as exc:  # noqa: BLE001
            results[index] = exc
    return runs


def _baselines(runs: list[_Run], results: list[Result | None], shared: _Shared) -> None:
    """svm, logreg and separability per (data, logreg_C); lp per (that, p); warn each run."""
    for run in runs:
        key = (run.data_id, run.cfg.logreg_C)
        try:
            if key not in shared.base:
                shared.base[key] = _attempt(compute_baselines, run.data.X, run.data.y, p=None,
                                            logreg_C=run.cfg.logreg_C, seed=run.cfg.seed)
            base = shared.base[key]
            if isinstance(base, Exception):
                raise base
            lp_key = (*key, run.potential.margin_p)
            if lp_key not in shared.lp:
                shared.lp[lp_key] = _attempt(lp_max_margin_after, base, run.data.X, run.data.y,
                                             run.potential.margin_p)
            if isinstance(shared.lp[lp_key], Exception):
                raise shared.lp[lp_key]
            direction, notes = shared.lp[lp_key]
            for message in (*base.warnings, *notes):
                run.ctx.warn(message)
            run.directions = {"svm": base.svm, "logreg": base.logreg, "lp_max_margin": direction}
            run.separable = base.separable
        except Exception as exc:  # noqa: BLE001
            results[run.index] = exc


def _attempt(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or the exception it raised."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - kept for every run that needs this result
        return exc


def _linear_key(run: _Run) -> tuple:
    cfg = run.cfg
    return (run.data_id, run.potential, cfg.lr, cfg.loss, cfg.epochs, cfg.dtype)


def _linear_md(runs: list[_Run], results, shared: _Shared) -> None:
    """The linear MD direction of every run, each distinct problem trained once."""
    todo = [k for k in dict.fromkeys(_linear_key(r) for r in runs) if k not in shared.linear]
    if todo:
        ids = sorted({k[0] for k in todo})
        slot = {data_id: j for j, data_id in enumerate(ids)}
        cfg = runs[0].cfg
        found = linear_md_directions(
            [slot[k[0]] for k in todo], [shared.datasets[i].X for i in ids],
            [shared.datasets[i].y for i in ids], [k[1] for k in todo], [k[2] for k in todo],
            cfg.loss, cfg.epochs, _dtype(cfg),
        )
        shared.linear.update(zip(todo, found))
    for run in runs:
        w = shared.linear[_linear_key(run)]
        if isinstance(w, NonFiniteError):
            results[run.index] = NonFiniteError(w.what, w.step)
        else:
            run.directions["linear_md"] = w


def _train(runs: list[_Run], results: list[Result | None], shared: _Shared) -> None:
    """Train ``runs`` together, logging and checkpointing each; failures drop out."""
    datasets = shared.datasets
    ids = sorted({r.data_id for r in runs})
    slot = {data_id: j for j, data_id in enumerate(ids)}
    cfg = runs[0].cfg
    engine = BatchedMirrorDescent(
        [r.layers for r in runs], [slot[r.data_id] for r in runs],
        [datasets[i].X for i in ids], [datasets[i].y for i in ids],
        [r.cfg.lr for r in runs], [r.potential for r in runs], cfg.loss,
    )
    tracker = BatchedMetricTracker(
        [TrackedRun(r.data.X, r.data.y, slot[r.data_id], r.potential, r.directions,
                    r.init_weights) for r in runs],
        cfg.loss, outputs.DIRECTION_NAMES,
    )
    active = list(runs)
    contexts = [r.ctx for r in active]
    state_fns = [_state_fn(r, engine) for r in active]
    for row, run in enumerate(active):
        run.row = row

    def drop(failed: dict[int, BaseException]) -> None:
        """Record the failures; keep the rest (the lists interruptible_batch reads too)."""
        keep = [row for row in range(len(active)) if row not in failed]
        for row, exc in failed.items():
            results[active[row].index] = exc
        for seq in (active, contexts, state_fns):
            seq[:] = [seq[row] for row in keep]
        for row, run in enumerate(active):
            run.row = row
        if active:
            engine.select(keep)
            tracker.select(keep)

    epochs, interval = cfg.epochs, cfg.log_interval
    try:
        with interruptible_batch(contexts, state_fns, last_epoch=epochs) as at_epoch:
            epoch = 0
            while active:
                at_epoch(epoch)
                if epoch % interval == 0 or epoch == epochs:
                    failed = {}
                    for row, metrics in enumerate(tracker(engine.weights_numpy())):
                        if isinstance(metrics, BaseException):
                            failed[row] = metrics
                            continue
                        run = active[row]
                        run.last = metrics
                        run.ctx.log(epoch, **metrics)
                    if failed:
                        drop(failed)
                if epoch >= epochs or not active:
                    break
                finite = engine.step().tolist()
                if not all(finite):
                    drop({row: NonFiniteError("training loss", epoch)
                          for row, ok in enumerate(finite) if not ok})
                epoch += 1
    except BaseException as exc:  # noqa: BLE001 - an interruption, or a failure of them all
        for run in active:
            results[run.index] = exc
        return
    e2e = engine.end_to_end().to(torch.float64).numpy()
    for run in active:
        run.e2e = e2e[run.row].copy()


def _state_fn(run: _Run, engine: BatchedMirrorDescent) -> Callable[[], dict]:
    """The checkpoint state ``study.run`` saves, for this run's row of the batch."""

    def state() -> dict:
        epoch = engine.steps
        duals = engine.layer_duals(run.row) if epoch > 0 else [None] * len(run.layers)
        return {
            "trainer": {
                "epoch": epoch,
                "weights": engine.layer_weights(run.row),
                "duals": duals,
                "shuffle": run.shuffle.clone(),
            },
            "directions": {k: _tensor(v) for k, v in run.directions.items()},
            "separable": run.separable,
            "init_weights": [_tensor(w) for w in run.init_weights],
        }

    return state


def _finish(run: _Run) -> Result:
    """The final dict, directions.json and figures of a run that trained to the end."""
    try:
        warn_if_stalled(run.ctx, run.cfg, run.data.X, run.data.y, run.init_weights, run.last,
                        run.directions["logreg"])
        w = run.e2e
        p = run.potential.margin_p
        final = outputs.final_metrics(run.cfg.epochs, run.last, run.data, w, run.directions,
                                      run.separable)
        outputs.save_directions(run.ctx, w, run.directions, p, run.separable, run.data)
        if run.cfg.plots:
            outputs.save_figures(run.ctx, run.data.X, run.data.y, w, run.directions, p,
                                  run.cfg.figure_formats)
        return final
    except Exception as exc:  # noqa: BLE001
        return exc
