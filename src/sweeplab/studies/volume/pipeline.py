"""The five stages of a minima-volume run, each cached (``stages.StageCache``).

1. **train** (one unit per ``m``): a model on the first ``base_size + m`` pool samples;
   ``models/m<m>.pt`` and the split ``data/split.npz``. The models of a run train as one
   batch where that pays (``batch: auto``, :mod:`.batched`), else one by one; in a
   batch of runs, with the models of the other runs (:mod:`.runs_together`).
2. **perturb** (one unit per ``m``): ``n_directions`` filter-scaled directions
   (direction ``i`` from seed ``perturbation_seed + i``, scaled by ``direction_scaling``),
   the loss and accuracy along them on every landscape at the steps of
   ``coefficient_grid``, batched, :data:`DIRECTION_BLOCK` directions at a time (so K =
   1,000 directions of a 235k-parameter MLP never sit in memory at once);
   ``perturb/m<m>.npz``. With ``search: coarse_to_fine`` only the crossings of
   ``loss_cutoffs`` are searched (and the coarse curve kept); with ``grid`` the whole
   grid is kept and any cutoff can be read later.
3. **volume**: radius of each direction at each cutoff (the crossing coefficient times
   the norm of the raw Gaussian direction, or of the filter-scaled step with
   ``radius_norm: scaled``), log-volume per (model, cutoff, landscape) by log-sum-exp,
   uncrossed directions treated by ``uncrossed``; ``volume.csv`` / ``volume.json``, whose
   ``headline`` column marks the landscape the run reports (the clean base set in
   ``poison``, each model's own training set else), and ``volume_by_k.csv``: the same
   log-volumes from the first k directions, k in :data:`K_PREFIXES` below K.
4. **cutoff**: the landscape size from which the unperturbed model's cumulative mean
   loss over the pool stays above each cutoff (volume 0 from there on), and the first
   size where it exceeds the cutoff at all; ``cutoffs.csv`` / ``cutoffs.json``, the
   curves in ``cutoffs/loss_curves.npz``.
5. **test**: loss and accuracy of every model on the test set; ``test_accuracies.csv`` /
   ``.json``.

Fan, Sandlund & Ko (2025), "Sharp Minima Can Generalize: A Loss Landscape Perspective
On Data", arXiv 2511.04808, Sec. 3 (volume estimate) and Sec. 4 (experiments).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sweeplab.core.context import RunContext
from sweeplab.core.rundir import save_json, save_npz, save_table, save_torch
from sweeplab.errors import SweeplabError
from sweeplab.studies.volume.batched import ModelJob, RunModels, train_runs_together
from sweeplab.studies.volume.batched import plan as plan_batch
from sweeplab.studies.volume.config import STAGES, VolumeConfig
from sweeplab.studies.volume.crossings import coarse_to_fine, first_crossings
from sweeplab.studies.volume.data import N_CLASSES, VolumeData, load_volume_data, save_split
from sweeplab.studies.volume.directions import flatten_params, make_directions, raw_norms
from sweeplab.studies.volume.landscape import LandscapeData, scan_grid
from sweeplab.studies.volume.models import build_model, n_parameters
from sweeplab.studies.volume.partials import epoch_of, steps_per_epoch, to_one_by_one
from sweeplab.studies.volume.stages import StageCache, inputs_key
from sweeplab.studies.volume.train import evaluate, per_sample_loss, train_model
from sweeplab.studies.volume.volume_math import (
    cutoff_size,
    first_crossing_size,
    prefix_means,
    volume_table,
)

FORMAT = {"data": 1, "train": 1, "perturb": 2, "volume": 3, "cutoff": 3, "test": 1}
"""Output format version of each stage, part of its key: outputs of an older version of
this module are made again rather than misread."""
DATA_FIELDS = ("dataset", "data_seed", "base_size", "extra_sizes", "test_size", "category",
               "normalize")
MODEL_FIELDS = ("arch", "hidden", "channels", "model_seed")
TRAIN_FIELDS = ("optimizer", "lr", "momentum", "weight_decay", "epochs", "batch_size")
PERTURB_FIELDS = ("n_directions", "perturbation_seed", "direction_scaling", "max_coefficient",
                  "n_coefficients", "coefficient_grid", "search")
DIRECTION_BLOCK = 128
"""Directions drawn and searched at once in the perturb stage: memory is this many
parameter vectors, whatever ``n_directions`` (each direction is independent of the others,
so the result is the same as one block of all of them)."""
K_PREFIXES = (16, 64, 256, 1000)
"""Numbers of directions k (below ``n_directions``) whose log-volume ``volume_by_k.csv``
also holds: the first k directions, a nested subsample, show how the estimate and the
ranking of models move with K."""


class StageInputMissing(SweeplabError, RuntimeError):
    """A stage was asked for without the (current) outputs of the stage it reads."""


@dataclass
class Pipeline:
    """One run's stages over its data, with the cache that says what is still valid."""

    cfg: VolumeConfig
    ctx: RunContext
    data: VolumeData
    cache: StageCache

    @classmethod
    def open(cls, cfg: VolumeConfig, ctx: RunContext) -> Pipeline:
        """The pipeline of the run ``ctx``: its data loaded, its stage cache."""
        return cls(cfg, ctx, load_volume_data(cfg), StageCache(ctx.run_dir))

    # keys --------------------------------------------------------------------------

    def _fields(self, names: tuple[str, ...]) -> dict[str, Any]:
        canon = self.cfg.canonical()
        return {k: canon[k] for k in names}

    def _key(self, stage: str, **inputs: Any) -> str:
        """The key of a unit of ``stage`` from its inputs (and the stage's format)."""
        return inputs_key({"stage": stage, "format": FORMAT[stage], **inputs})

    def data_key(self) -> str:
        return self._key("data", **self._fields(DATA_FIELDS))

    def train_key(self, m: int) -> str:
        fields = self._fields(MODEL_FIELDS + TRAIN_FIELDS)
        if self.cfg.category == "sam":
            fields["sam_rho"] = self.cfg.sam_rho
        return self._key("train", m=m, data=self.data_key(), **fields)

    def model_digest(self, m: int) -> str | None:
        """SHA-256 of ``models/m<m>.pt``: what reads a model depends on its content."""
        path = self.ctx.run_dir / "models" / f"m{m}.pt"
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None

    def perturb_key(self, m: int) -> str:
        fields = self._fields(PERTURB_FIELDS)
        fields["sizes"] = list(self.cfg.sizes)
        if self.cfg.search == "coarse_to_fine":
            fields.update(cutoffs=list(self.cfg.loss_cutoffs), stride=self.cfg.coarse_stride)
        return self._key("perturb", model=self.model_digest(m), landscape=self.data_key(),
                         **fields)

    def volume_key(self) -> str:
        return self._key("volume", cutoffs=list(self.cfg.loss_cutoffs),
                         radius_norm=self.cfg.radius_norm, uncrossed=self.cfg.uncrossed,
                         headline=self.cfg.headline_size,
                         perturb=[self.perturb_key(m) for m in self.cfg.extra_sizes])

    def cutoff_key(self) -> str:
        return self._key("cutoff", cutoffs=list(self.cfg.loss_cutoffs),
                         landscape=self.data_key(),
                         models=[self.model_digest(m) for m in self.cfg.extra_sizes])

    def test_key(self) -> str:
        return self._key("test", data=self.data_key(),
                         models=[self.model_digest(m) for m in self.cfg.extra_sizes])

    # helpers -----------------------------------------------------------------------

    def _need(self, unit: str, key: str, stage: str) -> None:
        if not self.cache.fresh(unit, key):
            raise StageInputMissing(
                f"stage {stage} needs the current outputs of {unit} (missing, or made from "
                f"other inputs); run the stage before it first, or all stages "
                f"(sweeplab volume run CONFIG)"
            )

    def _unit(self, unit: str, key: str, work: Callable[[], list[Path]]) -> bool:
        """Run ``work`` unless ``unit`` is fresh; True when it ran."""
        if self.cache.fresh(unit, key):
            self.ctx.train_log.event(f"{unit}: cached")
            return False
        started = time.perf_counter()
        outputs = work()
        self.cache.record(unit, key, outputs, time.perf_counter() - started)
        self.ctx.train_log.event(f"{unit}: done in {time.perf_counter() - started:.1f}s")
        return True

    def model(self, m: int) -> torch.nn.Module:
        """The trained model of ``m`` added samples, from ``models/m<m>.pt``."""
        model = build_model(self.cfg, tuple(self.data.x.shape[-2:]), N_CLASSES)
        saved = torch.load(self.ctx.path("models", f"m{m}.pt"), weights_only=True,
                           map_location="cpu")
        model.load_state_dict(saved["state_dict"])
        return model.eval()

    def landscape(self) -> LandscapeData:
        top = self.cfg.sizes[-1]  # samples past the largest landscape change nothing
        return LandscapeData(self.data.x[:top], self.data.labels[:top], tuple(self.cfg.sizes))

    @property
    def device(self) -> torch.device:
        return torch.device(self.cfg.device)

    # stages ------------------------------------------------------------------------

    def train(self) -> None:
        """The split, then every model not yet current: one batch where it pays, else one
        by one (``batch``; :mod:`.batched`)."""
        self.split()
        self.train_models(self.untrained())

    def split(self) -> None:
        """The split unit: ``data/split.npz``, what every later stage reads."""
        split = self.ctx.path("data", "split.npz")
        self._unit("split", self.data_key(), lambda: [save_split(self.data, split)])

    def untrained(self) -> list[int]:
        """The ``m`` whose model is not current (its train unit is not fresh)."""
        return [m for m in self.cfg.extra_sizes
                if not self.cache.fresh(f"train/m{m}", self.train_key(m))]

    def train_models(self, todo: list[int]) -> None:
        """Train the models ``todo``: one batch where it pays, else one by one."""
        together = todo if self._batch_pays(todo) else []
        if together:
            self._train_batched(together)
        for m in self.cfg.extra_sizes:
            if m not in together:
                self._unit(f"train/m{m}", self.train_key(m), lambda m=m: self._train_one(m))

    def after_train(self) -> dict[str, float]:
        """The stages after train that ``cfg.stages`` asks for, then the final metrics."""
        for stage in STAGES[1:]:
            if self.cfg.wants(stage):
                getattr(self, stage)()
        return summarize(self)

    def models_to_train(self, ms: list[int]) -> tuple[RunModels, torch.Tensor, torch.Tensor]:
        """The models ``ms`` as one run's part of a batch, and their shared training data
        (on the device) that :meth:`keep_trained` reads back."""
        jobs = self._model_jobs(ms, batched=True)
        x, y = (t.to(self.device) for t in self.data.train_set(jobs[-1].size))
        return RunModels(self.cfg, x, y, jobs, self._make_model, self.ctx.logger), x, y

    def _make_model(self) -> torch.nn.Module:
        return build_model(self.cfg, tuple(self.data.x.shape[-2:]), N_CLASSES)

    def _model_jobs(self, ms: list[int], batched: bool) -> list[ModelJob]:
        """One :class:`ModelJob` per ``m``: its size, partial state, and where it reports."""
        return [ModelJob(m, self.cfg.base_size + m, self._partial(m, batched),
                         save_partial=lambda state, m=m: self._save_partial(m, state),
                         log=lambda epoch, loss, acc, m=m: self.ctx.train_log.event(
                             f"train/m{m}: epoch {epoch} loss {loss:.4g} acc {acc:.4f}"))
                for m in ms]

    def _batch_pays(self, todo: list[int]) -> bool:
        """Whether the models ``todo`` train as one batch: ``batch: auto``, two or more of
        them, and :func:`.batched.plan` finds that batching pays for this model on this
        device (said in the training log either way)."""
        if self.cfg.batch == "off" or len(todo) < 2:
            return False
        jobs = [ModelJob(m, self.cfg.base_size + m) for m in todo]
        x, y = self.data.train_set(jobs[-1].size)
        chosen = plan_batch(self.cfg, x, y, jobs, self._make_model)
        self.ctx.train_log.event(f"train: {chosen.describe()}")
        return chosen.pays

    def _train_batched(self, ms: list[int]) -> None:
        """Train the models ``ms`` as one batch; record each as its own unit."""
        models, x, y = self.models_to_train(ms)
        started = time.perf_counter()
        (outcomes,) = train_runs_together([models])
        self.keep_trained(models, x, y, outcomes, time.perf_counter() - started,
                          f"one batch of {len(ms)} models")

    def keep_trained(self, models: RunModels, x: torch.Tensor, y: torch.Tensor,
                     outcomes: list[torch.nn.Module | BaseException], seconds: float,
                     batch: str) -> None:
        """Record each model of a batch (``batch`` says which, for the log) as its own unit.

        A model that fails in the batch is trained again alone, which gives the run the
        error (and epoch) it has one by one; the models trained are kept either way.
        """
        failed = []
        for job, outcome in zip(models.jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failed.append((job.m, outcome))
                continue
            path = self._save_model(job.m, outcome.to(self.device), x[:job.size], y[:job.size])
            self.cache.record(f"train/m{job.m}", self.train_key(job.m), [path], seconds)
            self.ctx.train_log.event(f"train/m{job.m}: done in {seconds:.1f}s ({batch})")
        for m, error in failed:
            self.ctx.train_log.event(f"train/m{m}: {type(error).__name__} in the batch "
                                     f"({error}); training it alone")
            self.ctx.path("models", f"m{m}.partial.pt").unlink(missing_ok=True)
            self._unit(f"train/m{m}", self.train_key(m), lambda m=m: self._train_one(m))

    def _partial(self, m: int, batched: bool) -> dict[str, Any] | None:
        """The partial state model ``m`` continues from in this path (:mod:`.partials`)."""
        path = self.ctx.path("models", f"m{m}.partial.pt")
        if not path.exists():
            return None
        where = "cpu" if batched else self.device  # the batched trainer places it itself
        saved = torch.load(path, weights_only=True, map_location=where)
        if saved.get("key") != self.train_key(m):
            return None
        state = saved["state"]
        if not batched:
            spe = steps_per_epoch(self.cfg.base_size + m, self.cfg.batch_size)
            state = to_one_by_one(state, spe)
            if state is None:
                self.ctx.train_log.event(f"train/m{m}: its partial state stopped mid-epoch in "
                                         f"a batch; starting over one by one")
                return None
        self.ctx.train_log.event(f"train/m{m}: continuing from epoch {epoch_of(state)}")
        return state

    def _save_partial(self, m: int, state: dict[str, Any]) -> None:
        save_torch({"key": self.train_key(m), "state": state},
                   self.ctx.path("models", f"m{m}.partial.pt"))

    def _train_one(self, m: int) -> list[Path]:
        (job,) = self._model_jobs([m], batched=False)
        x, y = (t.to(self.device) for t in self.data.train_set(job.size))
        model = self._make_model().to(self.device)
        train_model(self.cfg, model, x, y, job.partial, job.save_partial, job.log)
        return [self._save_model(m, model, x, y)]

    def _save_model(self, m: int, model: torch.nn.Module, x: torch.Tensor,
                    y: torch.Tensor) -> Path:
        """``models/m<m>.pt`` of a trained model (its loss and accuracy on ``(x, y)``, its
        training set); the partial state is dropped."""
        loss, acc = evaluate(model, x, y)
        path = self.ctx.path("models", f"m{m}.pt")
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_torch({"state_dict": state, "m": m, "train_size": len(y), "train_loss": loss,
                    "train_acc": acc, "n_params": n_parameters(model)}, path)
        self.ctx.path("models", f"m{m}.partial.pt").unlink(missing_ok=True)
        return path

    def perturb(self) -> None:
        for m in self.cfg.extra_sizes:
            self._need(f"train/m{m}", self.train_key(m), "perturb")
            self._unit(f"perturb/m{m}", self.perturb_key(m), lambda m=m: self._perturb_one(m))

    def _perturb_one(self, m: int) -> list[Path]:
        cfg = self.cfg
        model = self.model(m).to(self.device)
        params = {k: p.detach() for k, p in model.named_parameters()}
        theta = flatten_params(params)
        coefficients = torch.from_numpy(coefficient_grid(cfg))
        data = self.landscape()
        max_batch = cfg.eval_batch or None
        parts: list[dict[str, np.ndarray]] = []
        for lo in range(0, cfg.n_directions, DIRECTION_BLOCK):
            k = min(DIRECTION_BLOCK, cfg.n_directions - lo)
            seed = cfg.perturbation_seed + lo
            directions = make_directions(params, seed, k, cfg.direction_scaling)
            part = {"direction_norms": directions.double().norm(dim=1).cpu().numpy(),
                    "raw_norms": raw_norms(params, seed, k).numpy()}
            if cfg.search == "grid":
                loss, acc = scan_grid(model, theta, directions, coefficients, data,
                                      max_batch=max_batch)
                part.update(loss=np.asarray(loss), acc=np.asarray(acc),
                            n_evaluated=np.asarray(k * cfg.n_coefficients))
            else:
                found = coarse_to_fine(model, theta, directions, coefficients, data,
                                       list(cfg.loss_cutoffs), cfg.coarse_stride,
                                       max_batch=max_batch)
                part.update(index=np.asarray(found.index),
                            coarse_index=np.asarray(found.coarse_index),
                            coarse_loss=np.asarray(found.coarse_loss),
                            coarse_acc=np.asarray(found.coarse_acc),
                            n_evaluated=np.asarray(found.n_evaluated))
            parts.append(part)
        out: dict[str, Any] = {
            "coefficients": coefficients.numpy(), "sizes": np.asarray(cfg.sizes),
            "n_params": np.asarray(theta.numel()), "search": np.asarray(cfg.search),
            "direction_norms": np.concatenate([p["direction_norms"] for p in parts]),
            "raw_norms": np.concatenate([p["raw_norms"] for p in parts]),
            "n_evaluated": np.asarray(sum(int(p["n_evaluated"]) for p in parts)),
        }
        if cfg.search == "grid":
            out.update(loss=np.concatenate([p["loss"] for p in parts]),
                       acc=np.concatenate([p["acc"] for p in parts]))
        else:
            out.update(cutoffs=np.asarray(cfg.loss_cutoffs),
                       index=np.concatenate([p["index"] for p in parts], axis=1),
                       coarse_index=parts[0]["coarse_index"],
                       coarse_loss=np.concatenate([p["coarse_loss"] for p in parts]),
                       coarse_acc=np.concatenate([p["coarse_acc"] for p in parts]))
        path = self.ctx.path("perturb", f"m{m}.npz")
        save_npz(path, out)
        return [path]

    def crossings(self, m: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Crossing indices (Q, K, S) at ``loss_cutoffs`` and the perturb stage's arrays."""
        with np.load(self.ctx.path("perturb", f"m{m}.npz")) as npz:
            saved = {k: npz[k] for k in npz.files}
        if "loss" in saved:
            index = np.asarray(first_crossings(torch.from_numpy(saved["loss"]),
                                               list(self.cfg.loss_cutoffs)))
        else:
            index = saved["index"]
        return index, saved

    def volume(self) -> None:
        for m in self.cfg.extra_sizes:
            self._need(f"perturb/m{m}", self.perturb_key(m), "volume")
        self._unit("volume", self.volume_key(), self._volume)

    def _volume(self) -> list[Path]:
        cfg = self.cfg
        rows, by_k = [], []
        for m in cfg.extra_sizes:
            index, saved = self.crossings(m)
            norms = saved["raw_norms" if cfg.radius_norm == "raw" else "direction_norms"]
            n_params = int(saved["n_params"])
            headline = cfg.headline_size or cfg.base_size + m
            common = {"m": m, "train_size": cfg.base_size + m, "n_params": n_params}
            for row in volume_table(index, saved["coefficients"], norms, n_params,
                                    list(cfg.loss_cutoffs), list(cfg.sizes), cfg.uncrossed):
                rows.append({**common, "radius_norm": cfg.radius_norm,
                             "uncrossed_rule": cfg.uncrossed,
                             "headline": row["landscape_size"] == headline, **row})
            for k in [k for k in K_PREFIXES if k < cfg.n_directions] + [cfg.n_directions]:
                for row in volume_table(index[:, :k], saved["coefficients"], norms[:k],
                                        n_params, list(cfg.loss_cutoffs), list(cfg.sizes),
                                        cfg.uncrossed):
                    by_k.append({**common, "k": k,
                                 "headline": row["landscape_size"] == headline,
                                 **{key: row[key] for key in ("cutoff", "landscape_size",
                                                              "log_volume", "n_uncrossed",
                                                              "n_used")}})
        by_k_path = save_table(by_k, self.ctx.path("volume_by_k.csv"))
        return [*_write_table(self.ctx, "volume", rows), by_k_path]

    def cutoff(self) -> None:
        for m in self.cfg.extra_sizes:
            self._need(f"train/m{m}", self.train_key(m), "cutoff")
        self._unit("cutoff", self.cutoff_key(), self._cutoff)

    def _cutoff(self) -> list[Path]:
        rows, curves = [], {}
        for m in self.cfg.extra_sizes:
            per_sample = per_sample_loss(self.model(m).to(self.device),
                                         self.data.x.to(self.device),
                                         self.data.labels.to(self.device))[0].cpu().numpy()
            curves[f"m{m}"] = prefix_means(per_sample)
            for cutoff in self.cfg.loss_cutoffs:
                size = cutoff_size(per_sample, cutoff)
                first = first_crossing_size(per_sample, cutoff)
                rows.append({"m": m, "train_size": self.cfg.base_size + m, "cutoff": cutoff,
                             "cutoff_size": size if size is not None else np.nan,
                             "crossed": size is not None,
                             "first_crossing_size": first if first is not None else np.nan})
        curves_path = self.ctx.path("cutoffs", "loss_curves.npz")
        save_npz(curves_path, curves)
        return [*_write_table(self.ctx, "cutoffs", rows), curves_path]

    def test(self) -> None:
        for m in self.cfg.extra_sizes:
            self._need(f"train/m{m}", self.train_key(m), "test")
        self._unit("test", self.test_key(), self._test)

    def _test(self) -> list[Path]:
        rows = []
        for m in self.cfg.extra_sizes:
            loss, acc = evaluate(self.model(m).to(self.device), self.data.x_test.to(self.device),
                                 self.data.y_test.to(self.device))
            rows.append({"m": m, "train_size": self.cfg.base_size + m, "test_loss": loss,
                         "test_acc": acc})
        return _write_table(self.ctx, "test_accuracies", rows)


def coefficient_grid(cfg: VolumeConfig) -> np.ndarray:
    """The steps (C,) float64 along each direction: ``max_coefficient · t`` (``linear``) or
    ``max_coefficient · t²`` (``quadratic``, the authors' ``np.linspace(0, 1, N) ** 2``),
    ``t = linspace(0, 1, n_coefficients)``. The quadratic grid is fine near the minimum,
    where sharp directions cross, and coarse far from it."""
    t = np.linspace(0.0, 1.0, cfg.n_coefficients, dtype=np.float64)
    return cfg.max_coefficient * (t ** 2 if cfg.coefficient_grid == "quadratic" else t)


def _write_table(ctx: RunContext, name: str, rows: list[dict[str, Any]]) -> list[Path]:
    """``<name>.csv`` and ``<name>.json`` (a list of records) in the run directory."""
    return [save_table(rows, ctx.path(f"{name}.csv")), save_json(rows, ctx.path(f"{name}.json"))]


def run_pipeline(cfg: VolumeConfig, ctx: RunContext) -> dict[str, float]:
    """Run the stages ``cfg.stages`` asks for, in order; per-model rows; final metrics."""
    pipeline = Pipeline.open(cfg, ctx)
    if cfg.wants("train"):
        pipeline.train()
    return pipeline.after_train()


def warn_uncrossed(ctx: RunContext, table: pd.DataFrame, max_coefficient: float,
                   uncrossed: str = "lower_bound", shown: int = 8) -> None:
    """One warning (kept in ``final.json``) when some radii of ``volume.csv`` never crossed.

    Said on every visit of the run, cached volume stage or not, so a rerun's ``final.json``
    still reports them: as lower bounds (``uncrossed: lower_bound``) or as directions left
    out of the mean (``drop``).
    """
    short = table[table["n_uncrossed"] > 0]
    if short.empty:
        return
    where = "; ".join(
        f"m={int(r.m)} cutoff {float(r.cutoff):g} landscape {int(r.landscape_size)}: "
        f"{int(r.n_uncrossed)} of {int(r.n_directions)}"
        for r in short.head(shown).itertuples())
    if len(short) > shown:
        where += f"; {len(short) - shown} more rows"
    if uncrossed == "drop":
        what = (f"they are left out of the mean (uncrossed: drop), so {len(short)} of "
                f"{len(table)} log-volumes in volume.csv rest on fewer directions (column "
                f"n_used)")
    else:
        what = (f"their radius is the range end, so {len(short)} of {len(table)} log-volumes "
                f"in volume.csv are lower bounds (column lower_bound)")
    ctx.warn(
        f"{int(table['n_uncrossed'].sum())} of {int(table['n_directions'].sum())} radii never "
        f"reach their loss cutoff within max_coefficient={max_coefficient:g} ({where}); "
        f"{what}; raise max_coefficient to measure them")


def summarize(pipeline: Pipeline) -> dict[str, float]:
    """One metrics row per model (step = m) from whatever stages are current; final.json.

    A row: train_size, train_loss, train_acc (train), test_loss, test_acc (test), and at
    the first loss cutoff log_volume, zero_volume (1 where log_volume is -inf) and
    n_uncrossed (volume), cutoff_size (cutoff). log_volume is the headline landscape's:
    in ``poison`` the clean base set (the poison notebooks' ``dataset_quantities=[0]``),
    so poison is not mixed with dataset size, with the model's own (poisoned) training
    set as ``log_volume_own``; elsewhere each model's own training set.
    """
    cfg, ctx, cache = pipeline.cfg, pipeline.ctx, pipeline.cache
    per_model: dict[int, dict[str, float]] = {m: {} for m in cfg.extra_sizes}
    for m in cfg.extra_sizes:
        if cache.fresh(f"train/m{m}", pipeline.train_key(m)):
            saved = torch.load(ctx.path("models", f"m{m}.pt"), weights_only=True,
                               map_location="cpu")
            per_model[m].update(train_size=float(saved["train_size"]),
                                train_loss=float(saved["train_loss"]),
                                train_acc=float(saved["train_acc"]))
    if cache.fresh("test", pipeline.test_key()):
        for row in pd.read_csv(ctx.path("test_accuracies.csv")).to_dict("records"):
            per_model[int(row["m"])].update(test_loss=row["test_loss"], test_acc=row["test_acc"])
    first_cut = cfg.loss_cutoffs[0]
    if cache.fresh("volume", pipeline.volume_key()):
        table = pd.read_csv(ctx.path("volume.csv"))
        first = table[table["cutoff"] == first_cut]
        for row in first[first["headline"]].to_dict("records"):
            # zero_volume says what an empty log_volume cell of metrics.jsonl/.csv (which
            # hold no infinities) means: -inf, not a volume left unmeasured
            per_model[int(row["m"])].update(
                log_volume=row["log_volume"], n_uncrossed=float(row["n_uncrossed"]),
                zero_volume=float(np.isneginf(row["log_volume"])))
        if cfg.headline_size is not None:
            own = first[first["landscape_size"] == first["train_size"]]
            for row in own.to_dict("records"):
                per_model[int(row["m"])]["log_volume_own"] = row["log_volume"]
        warn_uncrossed(ctx, table, cfg.max_coefficient, cfg.uncrossed)
    if cache.fresh("cutoff", pipeline.cutoff_key()):
        table = pd.read_csv(ctx.path("cutoffs.csv"))
        for row in table[table["cutoff"] == first_cut].to_dict("records"):
            per_model[int(row["m"])]["cutoff_size"] = row["cutoff_size"]
    for m, row in per_model.items():
        if row:
            ctx.log(m, **row)
    final: dict[str, float] = {"models": float(len(cfg.extra_sizes))}
    first, last = per_model[cfg.extra_sizes[0]], per_model[cfg.extra_sizes[-1]]
    for key in ("test_acc", "log_volume", "log_volume_own", "train_loss"):
        if key in first and key in last:
            final[f"{key}_fewest"] = float(first[key])
            final[f"{key}_most"] = float(last[key])
    final["stages_current"] = float(sum(
        cache.fresh(u, k) for u, k in (("volume", pipeline.volume_key()),
                                       ("cutoff", pipeline.cutoff_key()),
                                       ("test", pipeline.test_key()))))
    return final
