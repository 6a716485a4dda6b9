"""The study registry: name -> (typed config, run function), and study references.

A study registers itself with :func:`register_study`. Built-in studies are imported
lazily on first lookup (so ``sweeplab --help`` does not import torch); third-party
studies join through the ``sweeplab.studies`` entry-point group.

A study is also found without being installed: :func:`resolve_study` takes any *study
reference* (a registered name, ``./file.py:function``, ``package.module:function`` or a
``{command: ...}`` mapping for an unchanged script) and is the one place every part of
sweeplab (the CLI, the grid planner, each worker) turns one into a :class:`Study`.
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

    ``ref`` and ``base_dir`` are how the study was found (see :func:`resolve_study`):
    plain data that any process resolves to this study again, so a worker (local or on
    a Slurm node) imports a user's file exactly as the driver did. ``ref`` None: the
    study is known by its name. ``seeds`` says how a run with a ``seed`` parameter seeds
    this process's generators: ``all`` (Python's, NumPy's and torch's, importing it),
    ``imported`` (torch only if the study's code has imported it: a user's file that
    never uses torch does not pay its import) or ``none`` (a command study, whose work
    runs in a child process).
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
    ref: Any = None
    base_dir: str = ""
    seeds: str = "all"

    @property
    def reference(self) -> Any:
        """What :func:`resolve_study` needs (with :attr:`base_dir`) to find this study."""
        return self.name if self.ref is None else self.ref

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


def registered_studies() -> list[Study]:
    """Every study registered in this process so far (imports nothing)."""
    return list(_REGISTRY.values())


def resolve_study(ref: Any, base_dir: str | None = None,
                  values: dict[str, list[Any]] | None = None) -> Study:
    """The study a reference names; the one place references are understood.

    ``ref`` is a registered name (``implicit-bias``), a file and function
    (``./mystudy.py:run``; ``./mystudy.py:my-study`` finds the function registered in
    that file as ``my-study``), a module and function (``mypkg.train:run``), or a
    mapping ``{command: "python train.py", params: {...}}`` that runs an unchanged
    program per run (:mod:`sweeplab.core.command`). Relative paths and modules are
    found from ``base_dir`` (default: the current folder), which also goes on
    ``sys.path``. ``values`` (parameter -> every value a grid gives it) types a command's
    parameters where it declares no ``params:``. The result's :attr:`Study.ref` and
    :attr:`Study.base_dir` resolve to the same study in any process.

    Raises :class:`~sweeplab.errors.ConfigError` (one line, naming ``study``) when the
    reference cannot be resolved: unknown name, missing file, import error, no function.
    """
    from sweeplab.core.study_ref import resolve

    return resolve(ref, base_dir, values)
