"""The study registry: name -> (typed config, run function, everything study-specific).

A study registers itself with :func:`register_study`. Every installed study, the ones
sweeplab ships included, joins through the ``sweeplab.studies`` entry-point group: the
entry point names the study and the module that registers it, which is imported on
first lookup only (so ``sweeplab --help`` imports no study)::

    [project.entry-points."sweeplab.studies"]
    my-study = "mypkg.study"

A :class:`Study` carries what the framework must never know by name: its analysis, its
spec dialect, its CLI verbs, its templates, its grouping keys and the pip extra it
needs. CLI verbs that are not studies (an agent, a tool) join through the
``sweeplab.commands`` group (verb -> ``module:function``).

A study is also found without being installed: :func:`resolve_study` takes any *study
reference* (a registered name, ``./file.py:function``, ``package.module:function`` or a
``{command: ...}`` mapping for an unchanged script) and is the one place every part of
sweeplab (the CLI, the grid planner, each worker) turns one into a :class:`Study`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sweeplab.core.config import StudyConfig
from sweeplab.core.plugins import (
    ANALYZER_ENTRY_POINTS,
    COMMAND_ENTRY_POINTS,
    STUDY_ENTRY_POINTS,
    command_names,
)
from sweeplab.core.plugins import entry_points as _entry_points
from sweeplab.errors import ConfigError, SweeplabError, UnknownStudyError

__all__ = ["STUDY_ENTRY_POINTS", "Study", "Template", "command_names", "get_study",
           "register_study", "resolve_study", "study_names"]

StudyFn = Callable[..., dict[str, float]]

log = logging.getLogger("sweeplab.registry")


class MissingExtraError(SweeplabError):
    """A study (or a verb) needs packages that are not installed; the message names the
    ``pip install`` that adds them: ``extra`` (e.g. ``sweeplab[analysis]``), else
    the missing packages themselves."""

    def __init__(self, what: str, missing: list[str], extra: str = ""):
        self.what = what
        self.missing = missing
        self.extra = extra
        install = f"pip install '{extra}'" if extra else "pip install " + " ".join(missing)
        super().__init__(f"{what} needs {', '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed: {install}")


DISTRIBUTIONS = {"sklearn": "scikit-learn", "yaml": "PyYAML"}
"""Import name -> the name pip installs it by, where they differ."""


def require(what: str, modules: tuple[str, ...] | list[str], extra: str = "") -> None:
    """Raise :class:`MissingExtraError` if any of ``modules`` cannot be imported here.

    Looks the modules up without importing them (torch's import takes seconds).
    """
    missing = [DISTRIBUTIONS.get(name, name) for name in modules if not _importable(name)]
    if missing:
        raise MissingExtraError(what, missing, extra)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def load_object(ref: Any) -> Any:
    """``"package.module:attribute"`` imported and looked up; anything else as it is.

    Studies name their heavy parts (an analysis, a CLI verb) this way, so they are
    imported only when used.
    """
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        target = getattr(target, part)
    return target


@dataclass(frozen=True)
class Template:
    """A scaffold a study offers through ``sweeplab new KIND NAME``.

    ``make(name, folder)`` returns the files to write into ``folder`` (file name ->
    text); it may be given as ``"module:function"``. ``folder`` is where the files go
    without ``--dir``; ``next`` is the line said after writing them, with ``{path}``
    standing for the first file written.
    """

    kind: str
    make: Any
    folder: str = "."
    description: str = ""
    next: str = ""


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
    something else per step). ``cost(cfg)``, when given, is a rough guess of the seconds
    one run of ``cfg`` takes in a warm process: a grid given no ``--executor`` uses it to
    choose between running in its driver and starting workers
    (:mod:`sweeplab.execute.choose`); it must be light (no heavy imports).
    ``summary_keys`` are its headline final metrics, in the order ``sweeplab run`` shows
    them (empty: every numeric final metric).

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

    What only the study knows, the study carries:

    - ``analysis``: how ``sweeplab analyze`` treats its runs, a
      :class:`~sweeplab.analysis.spec.StudyAnalysis` or ``"module:NAME"`` naming one
      (imported by the analysis only); None: the default report;
    - ``group_keys``: the parameters that make a condition, for the default report of
      a study without an analysis (default: every varying parameter but the seeds);
    - ``dialect``: a :class:`~sweeplab.core.spec_dialect.SpecDialect`, a flat spec form
      of its own (list keys to sweep, every other key fixed);
    - ``commands``: CLI verbs (``sweeplab VERB ...``), verb -> ``"module:function"``
      taking the arguments after the verb and returning the exit status;
    - ``templates``: :class:`Template` scaffolds for ``sweeplab new``;
    - ``extra`` and ``requires``: what to ``pip install`` for the modules its runs
      import (``sweeplab[analysis]``, ``mypkg[gpu]``), and those modules; a run is
      refused up front, in one line naming the install, when one is missing.
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
    analysis: Any = None
    group_keys: tuple[str, ...] = ()
    dialect: Any = None
    commands: Mapping[str, Any] = field(default_factory=dict)
    templates: tuple[Template, ...] = ()
    extra: str = ""
    requires: tuple[str, ...] = ()
    cost: Callable[[Any], float] | None = None

    @property
    def reference(self) -> Any:
        """What :func:`resolve_study` needs (with :attr:`base_dir`) to find this study."""
        return self.name if self.ref is None else self.ref

    @property
    def batchable(self) -> bool:
        """Whether the study can train several runs as one batched computation."""
        return self.batch_key is not None and self.run_batch is not None

    def check_requirements(self) -> None:
        """Raise :class:`MissingExtraError` when a module its runs need is missing."""
        require(f"study {self.name}", self.requires, self.extra)


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
    analysis: Any = None,
    group_keys: tuple[str, ...] = (),
    dialect: Any = None,
    commands: Mapping[str, Any] | None = None,
    templates: tuple[Template, ...] = (),
    extra: str = "",
    requires: tuple[str, ...] = (),
    cost: Callable[[Any], float] | None = None,
) -> Callable[[StudyFn], StudyFn]:
    """Decorator registering ``fn(cfg, ctx) -> final_metrics`` as study ``name``.

    ``batch_key`` and ``run_batch`` (both or neither) opt the study into batched runs;
    ``staged`` marks a study that caches its stages in the run directory; the rest is
    described at :class:`Study`.
    """
    if (batch_key is None) != (run_batch is None):
        raise TypeError(f"study {name}: give both batch_key and run_batch, or neither")

    def deco(fn: StudyFn) -> StudyFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Study(
            name, config, fn, preflight, doc[0] if doc else "", dict(grid_defaults or {}),
            module=fn.__module__, batch_key=batch_key, run_batch=run_batch, staged=staged,
            step_key=step_key, summary_keys=tuple(summary_keys), warm=tuple(warm),
            analysis=analysis, group_keys=tuple(group_keys), dialect=dialect,
            commands=dict(commands or {}), templates=tuple(templates), extra=extra,
            requires=tuple(requires), cost=cost,
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
    """Every study that can be looked up: installed (entry points) and registered ones."""
    return sorted(set(_REGISTRY) | set(_entry_points(STUDY_ENTRY_POINTS)))


def get_study(name: str) -> Study:
    """Look up a study by name, importing the module its entry point names on first use."""
    if name not in _REGISTRY:
        entry = _entry_points(STUDY_ENTRY_POINTS).get(name)
        if entry is None:
            raise UnknownStudyError(name, study_names())
        importlib.import_module(entry.module)
    if name not in _REGISTRY:
        raise UnknownStudyError(name, study_names())
    return _REGISTRY[name]


def registered_studies() -> list[Study]:
    """Every study registered in this process so far (imports nothing)."""
    return list(_REGISTRY.values())


def installed_studies() -> list[Study]:
    """Every installed study, importing each one's registering module (light by rule).

    For what only a study can answer (its dialect, verbs, templates). A study whose
    module fails to import is left out with a warning: one broken plugin must not take
    the others down.
    """
    for name, entry in sorted(_entry_points(STUDY_ENTRY_POINTS).items()):
        if name in _REGISTRY:
            continue
        try:
            importlib.import_module(entry.module)
        except Exception as exc:  # noqa: BLE001 - a third party's module: report, go on
            log.warning("study %s (%s) cannot be loaded: %s: %s", name, entry.module,
                        type(exc).__name__, exc)
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def find_command(verb: str) -> Callable[[list[str]], int] | None:
    """The function behind a plugin verb: an entry point of ``sweeplab.commands``, else
    a verb an installed study declares (``commands``); None if no plugin has it."""
    entry = _entry_points(COMMAND_ENTRY_POINTS).get(verb)
    if entry is not None:
        return entry.load()
    for study in installed_studies():
        if verb in study.commands:
            return load_object(study.commands[verb])
    return None


def analyzers() -> list[Callable[..., Any]]:
    """The ``sweeplab.analyzers`` hooks, loaded."""
    return [ep.load() for _, ep in sorted(_entry_points(ANALYZER_ENTRY_POINTS).items())]


def study_commands() -> dict[str, str]:
    """Verb -> the study that declares it, over every installed study."""
    return {verb: study.name for study in installed_studies() for verb in study.commands}


def study_templates() -> dict[str, Template]:
    """``sweeplab new`` kind -> its template, over every installed study."""
    out: dict[str, Template] = {}
    for study in installed_studies():
        for template in study.templates:
            if template.kind in out:
                raise ConfigError("template", template.kind, f"offered by both {study.name} "
                                  "and another study; kinds must be unique")
            out[template.kind] = template
    return out


def resolve_study(ref: Any, base_dir: str | None = None,
                  values: dict[str, list[Any]] | None = None) -> Study:
    """The study a reference names; the one place references are understood.

    ``ref`` is a registered name (``my-study``), a file and function
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
