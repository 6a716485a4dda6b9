"""The study registry: name -> (typed config, run function).

A study registers itself with :func:`register_study`. Built-in studies are imported
lazily on first lookup (so ``sweeplab --help`` does not import torch); third-party
studies join through the ``sweeplab.studies`` entry-point group.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from sweeplab.core.config import StudyConfig
from sweeplab.errors import UnknownStudyError

StudyFn = Callable[..., dict[str, float]]

BUILTIN_STUDIES = {
    "implicit-bias": "sweeplab.studies.implicit_bias.study",
    "anchor-composite": "sweeplab.studies.anchor.study",
    "inverse-sequence": "sweeplab.studies.anchor.study",
    "minima-volume": "sweeplab.studies.volume.study",
}
"""Name -> module that registers the study when imported."""


@dataclass(frozen=True)
class Study:
    """A registered study: its name, config class, run function and optional preflight.

    ``preflight(cfg)`` checks resources a config needs (dataset files, ...) without doing
    work, so the CLI can fail with exit status 2 before creating a run directory.
    ``grid_defaults`` are config values a grid uses unless its spec sets them (e.g. no
    per-run figures in a grid of hundreds of runs: the analysis draws the grid's figures).
    ``module`` is where the study was registered: a worker process imports it to find the
    study even when it is neither built in nor an entry point.

    A study may also train many runs as one batched computation: ``batch_key(cfg)`` says
    which runs can share a batch (equal keys; ``None``: this run cannot), and
    ``run_batch(cfgs, ctxs)`` runs them, returning each run's final metrics or the
    exception that failed it alone. Each run's files are the same as when it runs alone.

    A ``staged`` study keeps its own cache of stage outputs in the run directory and
    decides itself what is still valid, so a grid never clears a staged run's directory
    when its config changes (only the stages whose inputs changed run again).
    ``step_key`` names the step column of its metrics (``epoch`` unless it logs
    something else per step). ``summary_keys`` are its headline final metrics, in the
    order ``sweeplab run`` shows them (empty: every numeric final metric).

    ``warm`` names the modules that do the work (torch, scikit-learn, ...). The module
    that registers a study stays light, so a grid's driver validates and plans without
    them and a bad value is refused in a second; a worker process imports ``warm``
    before its first job, so it is paid once per worker, never per run.
    """

    name: str
    config: type[StudyConfig]
    fn: StudyFn
    preflight: Callable[[Any], None] | None = None
    description: str = ""
    grid_defaults: dict[str, Any] = field(default_factory=dict)
    module: str = ""
    batch_key: Callable[[Any], Any] | None = None
    run_batch: Callable[[list[Any], list[Any]], list[Any]] | None = None
    staged: bool = False
    step_key: str = "epoch"
    summary_keys: tuple[str, ...] = ()
    warm: tuple[str, ...] = ()

    @property
    def batchable(self) -> bool:
        """Whether the study can train several runs as one batched computation."""
        return self.batch_key is not None and self.run_batch is not None


_REGISTRY: dict[str, Study] = {}


def register_study(
    name: str,
    config: type[StudyConfig],
    preflight: Callable[[Any], None] | None = None,
    grid_defaults: dict[str, Any] | None = None,
    batch_key: Callable[[Any], Any] | None = None,
    run_batch: Callable[[list[Any], list[Any]], list[Any]] | None = None,
    staged: bool = False,
    step_key: str = "epoch",
    summary_keys: tuple[str, ...] = (),
    warm: tuple[str, ...] = (),
) -> Callable[[StudyFn], StudyFn]:
    """Decorator registering ``fn(cfg, ctx) -> final_metrics`` as study ``name``.

    ``batch_key`` and ``run_batch`` (both or neither) opt the study into batched runs;
    ``staged`` marks a study that caches its stages in the run directory (see :class:`Study`).
    """
    if (batch_key is None) != (run_batch is None):
        raise TypeError(f"study {name}: give both batch_key and run_batch, or neither")

    def deco(fn: StudyFn) -> StudyFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Study(
            name, config, fn, preflight, doc[0] if doc else "", dict(grid_defaults or {}),
            module=fn.__module__, batch_key=batch_key, run_batch=run_batch, staged=staged,
            step_key=step_key, summary_keys=tuple(summary_keys), warm=tuple(warm),
        )
        return fn

    return deco


def warm_up(module: str) -> None:
    """Import ``module`` and the ``warm`` modules of every study it registers."""
    importlib.import_module(module)
    for study in list(_REGISTRY.values()):
        if study.module == module:
            for name in study.warm:
                importlib.import_module(name)


def study_names() -> list[str]:
    """Every study that can be looked up: built-in, entry points and registered ones."""
    names = set(BUILTIN_STUDIES) | set(_REGISTRY)
    names |= {ep.name for ep in metadata.entry_points(group="sweeplab.studies")}
    return sorted(names)


def get_study(name: str) -> Study:
    """Look up a study by name, importing its module on first use."""
    if name not in _REGISTRY:
        module = BUILTIN_STUDIES.get(name)
        if module is None:
            eps = {ep.name: ep for ep in metadata.entry_points(group="sweeplab.studies")}
            if name in eps:
                module = eps[name].module
        if module is None:
            raise UnknownStudyError(name, study_names())
        importlib.import_module(module)
    if name not in _REGISTRY:
        raise UnknownStudyError(name, study_names())
    return _REGISTRY[name]
