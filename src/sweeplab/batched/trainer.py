"""Train B runs of one architecture as one computation: :func:`train_batched`.

Each step, for every run b at once: its next mini-batch (:mod:`.order`), its loss and
gradient (:mod:`.objective`), optionally the SAM gradient (:func:`.norms.sam_point`)
and clipping (:func:`.norms.clip_grads`), then its optimizer step (:mod:`.optim`). Runs
never mix, so run b computes what it computes alone, up to summation order.

The loop runs in chunks of ``sync_every`` steps. Within a chunk nothing is copied to
the host: the mini-batch tables and per-step optimizer coefficients go to the device
once per chunk, the losses stay there; at the chunk's end they come back in one copy and
each run's metrics (``train_loss``: the mean mini-batch loss of an epoch, plus what
``evaluate`` returns) go to its RunContext at the epochs it logs (``log_interval``
and the last). A chunk ends where a run ends or checkpoints, so both happen at a
step boundary of that run.

A run whose loss is not finite at step s fails there: its parameters and optimizer
state stay those before step s (no update), its result is a
:class:`~sweeplab.errors.NonFiniteError` naming step s, and the others go on unchanged.
On CPU every step's losses are checked on the host; on CUDA (``host_checks`` False) the
failure is masked on the device and found at the chunk's end.

``evaluate`` may also end a run at the epoch it evaluates (:meth:`EvalBatch.stop`: early
stopping, a time budget), and read its weights there (:meth:`EvalBatch.state_dict`: to
keep the best epoch's). The chunk then ends at that step; the run leaves the batch, its
result holding its weights and metrics at that epoch's end.

A stop signal (SIGTERM, SIGINT, SIGUSR2) is seen at the next step boundary: every run
still training logs what it has, writes its checkpoint through its context
(:mod:`.checkpoint`), and :class:`~sweeplab.core.context.RunInterrupted` is raised.
Resumed runs (a context with a checkpoint) continue from it, in any batch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sweeplab.batched import checkpoint
from sweeplab.batched.host_alloc import release_freed_memory, reuse_freed_memory
from sweeplab.batched.memory import StepCost, plan_batches, step_cost
from sweeplab.batched.norms import clip_grads, sam_point
from sweeplab.batched.objective import LossFn, Objective
from sweeplab.batched.optim import BatchedOptimizer
from sweeplab.batched.order import RunOrder
from sweeplab.batched.spec import RunSpec, TrainData, TrainSettings, validate
from sweeplab.batched.stack import StackedModel, check_batchable, signature
from sweeplab.core.context import stop_points
from sweeplab.errors import NonFiniteError

log = logging.getLogger(__name__)

MakeModel = Callable[[RunSpec], nn.Module]
FLAT = "flat"
"""The optimizer's one tensor: every trainable parameter of a run in one row."""
OPTIMIZER_STATES = {"sgd": 1, "adam": 2, "adamw": 2}


@dataclass
class RunResult:
    """What a run of a batch ended with: its final weights and metrics, or its error."""

    run: RunSpec
    state_dict: dict[str, torch.Tensor] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    epochs: int = 0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class EvalBatch:
    """The runs whose epoch just ended and logs: what ``evaluate`` gets.

    ``outputs(x)`` are the R models' outputs (R, n, ...) on one input ``x`` (n, ...);
    ``outputs(x, per_run=True)`` on one input per run (R, n, ...); with
    ``eval_mode=True`` the architecture runs in eval mode (``model.eval()``), as a model
    evaluated alone would. ``evaluate`` returns, per metric name, R values: a tensor
    (left on the device until the chunk's end) or a list of numbers.

    ``state_dict(i)`` is run i's weights now (an ordinary state dict, CPU copies);
    ``stop(i)`` ends run i's training at this epoch.
    """

    runs: list[RunSpec]
    epochs: list[int]
    _objective: Objective
    _tensors: dict[str, torch.Tensor]
    _state: Callable[[int], dict[str, torch.Tensor]] | None = None
    _stopped: list[int] = field(default_factory=list)

    def outputs(self, x: torch.Tensor, per_run: bool = False,
                eval_mode: bool = False) -> torch.Tensor:
        if not per_run:
            x = x.unsqueeze(0).expand(len(self.runs), *x.shape)
        base = self._objective.stack.base
        mode = base.training
        base.train(not eval_mode)
        try:
            with torch.no_grad():
                return self._objective.outputs(self._tensors, x)
        finally:
            base.train(mode)

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        """Run i's weights at this epoch's end, as ``model.state_dict()`` gives them."""
        assert self._state is not None
        return self._state(i)

    def stop(self, i: int) -> None:
        """End run i's training at this epoch (its result holds its weights now)."""
        if i not in self._stopped:
            self._stopped.append(i)


EvalFn = Callable[[EvalBatch], Mapping[str, Any]]


def _build(make_model: MakeModel, run: RunSpec) -> nn.Module:
    """``make_model(run)`` under ``torch.manual_seed(run.seed)``, the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        return make_model(run)


def train_batched(
    make_model: MakeModel,
    loss_fn: LossFn,
    data: TrainData,
    runs: Sequence[RunSpec],
    settings: TrainSettings | None = None,
    evaluate: EvalFn | None = None,
) -> list[RunResult]:
    """Train ``runs`` in batches; one :class:`RunResult` per run, in order.

    ``make_model(run)`` builds run's model (called under ``torch.manual_seed(run.seed)``);
    ``loss_fn(outputs, targets)`` gives one loss per sample. How many runs share a batch
    comes from the model's size and the memory allowed (:mod:`.memory`), said in a log
    line (and in every run's log). A run's failure (its loss not finite, its model not
    buildable, its checkpoint unreadable) is its result's ``error``; an exception of a
    whole batch is every run's error of that batch. Raises
    :class:`~sweeplab.errors.ConfigError` for bad settings, before any work, and
    :class:`~sweeplab.core.context.RunInterrupted` on a stop signal (checkpoints saved).
    """
    settings = settings or TrainSettings()
    validate(runs, settings, len(data))
    device = settings.torch_device
    data = TrainData(data.inputs.to(device), data.targets.to(device))
    cost = _probe(make_model, loss_fn, data, runs, settings.batch_size)
    plan = plan_batches(len(runs), cost, device, OPTIMIZER_STATES[settings.optimizer],
                        settings.sam, settings.memory_budget, settings.max_batch,
                        settings.always_batch)
    line = plan.describe()
    log.info(line)
    for run in runs:
        if run.ctx is not None:
            run.ctx.logger.info(line)
    together = device.type == "cpu" and any(len(unit) > 1 for unit in plan.units)
    if together:
        reuse_freed_memory()  # a batch's large temporaries would page-fault every step
    results: list[RunResult] = []
    try:
        for unit in plan.units:
            batch = _Batch(make_model, loss_fn, data, [runs[i] for i in unit], settings,
                           evaluate)
            results.extend(batch.train())
    finally:
        if together:
            release_freed_memory()
    return results


def _probe(make_model: MakeModel, loss_fn: LossFn, data: TrainData, runs: Sequence[RunSpec],
           batch_size: int) -> StepCost:
    """One training step of the first run whose model builds, measured on its first batch.

    If no model builds, the first run's exception is raised (every run fails with it).
    """
    error: Exception | None = None
    for run in runs:
        try:
            model = _build(make_model, run)
        except Exception as exc:  # noqa: BLE001 - that run fails later, alone
            error = error or exc
            continue
        check_batchable(model)
        batches = RunOrder(run.seed, len(data), batch_size, run.samples).batches(0, 1)
        index = batches.index[0, : int(batches.size[0])].to(data.targets.device)
        return step_cost(model, loss_fn, data.inputs[index].cpu(), data.targets[index].cpu())
    raise error if error is not None else ValueError("no runs to train")


@dataclass(eq=False)
class _Run:
    """One run's progress in its batch (host side)."""

    spec: RunSpec
    order: RunOrder
    result: RunResult
    step: int = 0
    epoch: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    last: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.spec.epochs * self.order.steps_per_epoch

    def logs(self, epoch: int) -> bool:
        return epoch % self.spec.log_interval == 0 or epoch == self.spec.epochs


class _Batch:
    """One unit of runs trained together (module docstring)."""

    def __init__(self, make_model: MakeModel, loss_fn: LossFn, data: TrainData,
                 specs: Sequence[RunSpec], settings: TrainSettings, evaluate: EvalFn | None):
        self.settings = settings
        self.data = data
        self.evaluate = evaluate
        self.device = settings.torch_device
        cuda = self.device.type == "cuda"
        self.host_checks = (not cuda) if settings.host_checks is None else settings.host_checks
        self.sync_every = settings.sync_every or (64 if cuda else 32)
        self.runs: list[_Run] = []
        models, saved = [], []
        for i, spec in enumerate(specs):
            run = _Run(spec, RunOrder(spec.seed, len(data), settings.batch_size, spec.samples),
                       RunResult(spec))
            self.runs.append(run)
            try:
                model = _build(make_model, spec)
                if models and signature(model) != signature(models[0]):
                    raise ValueError("its model differs from the batch's first model")
                state = checkpoint.saved_state(spec.ctx, f"run {spec.name or i}")
                if state is not None:
                    model.load_state_dict(state["model"])
                    self._restore_progress(run, state)
                models.append(model)
                saved.append((run, state))
            except Exception as exc:  # noqa: BLE001 - this run fails alone
                run.result.error = exc
        self.active = [run for run, _ in saved]
        if not self.active:
            return
        self.stack = StackedModel(models, self.device)
        self.objective = Objective(self.stack, loss_fn, settings.formulation)
        self.opt = BatchedOptimizer(settings.optimizer, {FLAT: self.stack.flat},
                                    [r.spec for r in self.active],
                                    [r.step for r in self.active], settings.nesterov)
        for row, (run, state) in enumerate(saved):
            if state is not None:
                self.opt.load_state_dict(row, self._param_rows(row), state["optimizer"],
                                         run.step, split=self.stack.split_row)
        dtype = self.stack.dtype
        self.max_norm = torch.tensor([r.spec.grad_clip or math.inf for r in self.active],
                                     dtype=dtype, device=self.device)
        self.clip = any(r.spec.grad_clip is not None for r in self.active)
        self.rho = torch.tensor([r.spec.sam_rho for r in self.active], dtype=dtype,
                                device=self.device)

    # ------------------------------------------------------------------ state

    @staticmethod
    def _restore_progress(run: _Run, state: dict[str, Any]) -> None:
        run.step = run.order.load_state_dict(state["order"])
        run.epoch = int(state["epoch"])
        run.loss_sum, run.loss_count = float(state["epoch_loss"][0]), int(state["epoch_loss"][1])
        run.last = dict(state["last"])

    def _param_rows(self, row: int) -> list[tuple[str, torch.Tensor, bool]]:
        trainable = set(self.stack.trainable)
        return [(n, self.stack.params[n][row], n in trainable) for n in self.stack.names]

    def _state(self, row: int) -> dict[str, Any]:
        run = self.active[row]
        return {checkpoint.STATE_KEY: {
            "format": checkpoint.STATE_FORMAT,
            "model": self.stack.state_dict(row),
            "optimizer": self.opt.state_dict(row, self._param_rows(row),
                                             split=self.stack.split_row),
            "order": run.order.state_dict(run.step),
            "step": run.step,
            "epoch": run.epoch,
            "epoch_loss": [run.loss_sum, run.loss_count],
            "last": dict(run.last),
        }}

    # ------------------------------------------------------------------ the loop

    def train(self) -> list[RunResult]:
        """Train every run to its end, failure or a stop signal; results in order."""
        if self.active:
            try:
                with stop_points(self._save_all) as stop_point:
                    self._retire([], [])
                    while self.active:
                        self._chunk(stop_point)
            except Exception as exc:  # noqa: BLE001 - a failure of the whole batch
                for run in self.active:
                    run.result.error = exc
                self.active = []
        return [run.result for run in self.runs]

    def _chunk_length(self) -> int:
        """Steps until the next sync, run end or checkpoint of any run."""
        k = self.sync_every
        for run in self.active:
            spe = run.order.steps_per_epoch
            ckpt = checkpoint.next_due(run.spec.ctx, run.epoch, run.spec.epochs)
            k = min(k, run.total - run.step, ckpt * spe - run.step)
        return max(1, k)

    def _tables(self, k: int) -> dict[str, Any]:
        """The chunk's mini-batches and optimizer coefficients, sent to the device once."""
        batches = [run.order.batches(run.step, k) for run in self.active]
        index = torch.stack([b.index for b in batches], dim=1)  # (K, B, bs)
        size = torch.stack([b.size for b in batches], dim=1)  # (K, B)
        coef = self.opt.coefficients(k)  # (K, B, 3)
        epoch_end = torch.stack([b.epoch_end for b in batches], dim=1)
        events = self._eval_events(k, epoch_end)
        host = {"index": index, "size": size, "coef": coef, **{
            f"rows{j}": torch.tensor(rows) for j, (_, rows) in enumerate(events)}}
        pin = self.device.type == "cuda"
        dev = {key: (t.pin_memory() if pin else t).to(self.device, non_blocking=pin)
               for key, t in host.items()}
        dtype = self.stack.dtype
        bs = self.settings.batch_size
        dev["weight"] = (torch.arange(bs, device=self.device) < dev["size"][..., None]).to(dtype)
        dev["count"] = dev["size"].to(dtype)
        dev["events"] = {k_: (rows, dev[f"rows{j}"]) for j, (k_, rows) in enumerate(events)}
        dev["epoch_end"] = epoch_end
        return dev

    def _eval_events(self, k: int, epoch_end: torch.Tensor) -> list[tuple[int, list[int]]]:
        """(step in chunk, rows) where runs end an epoch they log, when there is ``evaluate``."""
        if self.evaluate is None:
            return []
        events = []
        ends = epoch_end.tolist()
        for j in range(k):
            rows = [r for r, run in enumerate(self.active) if ends[j][r]
                    and run.logs(run.order.epoch_of(run.step + j) + 1)]
            if rows:
                events.append((j, rows))
        return events

    def _chunk(self, stop_point: Callable[[str], None]) -> None:
        k_max = self._chunk_length()
        t = self._tables(k_max)
        b = len(self.active)
        self._pending = {"tables": t, "done": 0, "evals": {},
                         "losses": torch.zeros(k_max, b, dtype=self.stack.dtype,
                                               device=self.device),
                         "fail": torch.full((b,), -1, dtype=torch.long, device=self.device),
                         "stopped": []}
        pending = self._pending
        data = self.data
        for k in range(k_max):
            stop_point(f"at step {self.active[0].step + k}")
            index = t["index"][k]
            x, y = data.inputs[index], data.targets[index]
            w, count = t["weight"][k], t["count"][k]
            loss, grad = self._gradient(self.stack.params, x, y, w, count)
            finite = torch.isfinite(loss)
            keep, failed_now = None, False
            if self.host_checks:
                if not bool(finite.all()):
                    keep, failed_now = finite, True
                    pending["fail"] = torch.where(finite, pending["fail"], k)
            else:
                keep = finite & (pending["fail"] < 0)
                pending["fail"] = torch.where(~finite & (pending["fail"] < 0), k,
                                              pending["fail"])
            flat = self.stack.flat
            if self.settings.sam:
                point = sam_point({FLAT: flat}, {FLAT: grad}, self.rho)[FLAT]
                _, grad = self._gradient(self.stack.views(point), x, y, w, count)
            if self.clip:
                grad = clip_grads({FLAT: grad}, self.max_norm)[FLAT]
            new = self.opt.step({FLAT: flat}, {FLAT: grad}, t["coef"][k], keep)[FLAT]
            if new is not flat:
                self.stack.set_flat(new)
            pending["losses"][k] = loss
            pending["done"] = k + 1
            if k in t["events"]:
                rows, rows_dev = t["events"][k]
                values, stopped = self._evaluate(rows, rows_dev, k)
                pending["evals"][k] = (rows, values)
                pending["stopped"] = [rows[i] for i in stopped]
            if failed_now or pending["stopped"]:
                break
        self._close_chunk()

    def _gradient(self, params, x, y, w, count) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's loss (B,) and whole gradient (B, P) at ``params``."""
        loss, grads = self.objective.value_and_grad(
            {n: params[n] for n in self.stack.trainable}, x, y, w, count)
        return loss, self.stack.flatten(grads)

    def _evaluate(self, rows: list[int], rows_dev: torch.Tensor,
                  k: int) -> tuple[Mapping[str, Any], list[int]]:
        """``evaluate``'s values for ``rows``, and the rows' indices it stopped."""
        tensors = self.stack.tensors()
        if len(rows) != len(self.active):
            tensors = {n: v.index_select(0, rows_dev) for n, v in tensors.items()}
        runs = [self.active[r] for r in rows]
        batch = EvalBatch([r.spec for r in runs],
                          [r.order.epoch_of(r.step + k) + 1 for r in runs],
                          self.objective, tensors, lambda i: self.stack.state_dict(rows[i]))
        values = self.evaluate(batch)  # type: ignore[misc] - events exist only with evaluate
        return values, list(batch._stopped)

    # ------------------------------------------------------------------ chunk end

    def _close_chunk(self) -> None:
        """Copy the chunk's figures to the host, log, retire failed and finished runs."""
        pending = self._pending
        done = pending["done"]
        if done == 0:
            return
        self._pending = {"done": 0}
        losses = pending["losses"][:done].to("cpu", torch.float64).tolist()
        fail = pending["fail"].tolist()
        stopped = set(pending["stopped"])
        epoch_end = pending["tables"]["epoch_end"].tolist()
        evals = {k: (rows, {name: _host(v) for name, v in values.items()})
                 for k, (rows, values) in pending["evals"].items()}
        failed, finished = [], []
        for row, run in enumerate(self.active):
            limit = done if fail[row] < 0 else fail[row]
            for k in range(limit):
                run.loss_sum += losses[k][row]
                run.loss_count += 1
                if epoch_end[k][row]:
                    self._end_epoch(run, row, k, evals)
            run.step += limit
            if fail[row] >= 0:
                run.result.error = NonFiniteError("training loss", run.step)
                failed.append(row)
            elif run.step >= run.total or row in stopped:
                finished.append(row)
        self._retire(failed, finished)

    def _end_epoch(self, run: _Run, row: int, k: int, evals: dict) -> None:
        run.epoch += 1
        if run.logs(run.epoch):
            metrics = {"train_loss": run.loss_sum / run.loss_count}
            if k in evals and row in evals[k][0]:
                i = evals[k][0].index(row)
                metrics |= {name: values[i] for name, values in evals[k][1].items()}
            run.last = metrics
            if run.spec.ctx is not None:
                run.spec.ctx.log(run.epoch, **metrics)
        run.loss_sum, run.loss_count = 0.0, 0

    def _retire(self, failed: list[int], finished: list[int]) -> None:
        """Checkpoint runs at a due epoch end; drop failed and finished runs from the batch."""
        finished = finished + [row for row, run in enumerate(self.active)
                               if run.step >= run.total and row not in finished + failed]
        for row, run in enumerate(self.active):
            if row in failed:
                continue
            at_epoch_end = run.step == run.epoch * run.order.steps_per_epoch
            if at_epoch_end and checkpoint.due(run.spec.ctx, run.epoch, run.spec.epochs):
                reason = "final" if run.epoch == run.spec.epochs else "interval"
                run.spec.ctx.checkpoint(run.epoch, self._state(row), reason=reason)
        for row in finished:
            self.active[row].result.state_dict = self.stack.state_dict(row)
        for run in self.active:
            run.result.steps, run.result.epochs = run.step, run.epoch
            run.result.metrics = dict(run.last)
        gone = set(failed) | set(finished)
        if gone:
            keep = [row for row in range(len(self.active)) if row not in gone]
            self.active = [self.active[row] for row in keep]
            if keep:
                self._select(keep)

    def _select(self, keep: list[int]) -> None:
        self.stack.select(keep)
        self.opt.select(keep)
        index = torch.as_tensor(keep, dtype=torch.long, device=self.device)
        self.max_norm = self.max_norm.index_select(0, index)
        self.rho = self.rho.index_select(0, index)

    def _save_all(self) -> None:
        """On a stop signal: log what the chunk has, then checkpoint every active run."""
        if getattr(self, "_pending", {}).get("done"):
            self._close_chunk()
        for row, run in enumerate(self.active):
            ctx = run.spec.ctx
            if ctx is not None:
                ctx.checkpoint(run.epoch, self._state(row), reason="signal")
                ctx.logger.warning("stopped at step %d (epoch %d), checkpoint saved",
                                   run.step, run.epoch)


def _host(values: Any) -> list[float]:
    """Per-run metric values as host floats (a tensor is copied at the chunk's end)."""
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).reshape(-1).tolist()
    return [float(v) for v in values]
