"""Study references: a user's own code as a study, found by path or module, not installed.

A reference is plain data, so it crosses process and machine boundaries as it is:

- a registered name: ``my-study`` (an installed study's entry point, or registered in this
  process);
- a file and a function: ``./mystudy.py:run``. The function's first parameter is typed
  with its :class:`~sweeplab.core.config.StudyConfig` (``def run(cfg: MyConfig, ctx)``,
  or ``def run(cfg: MyConfig)`` for code that logs with :func:`sweeplab.log`). After the
  colon may also stand the name a function of that file is registered under
  (``./mystudy.py:my-study``); with no colon, the file's one registered study, else its
  function ``run``;
- a module and a function: ``mypkg.train:run``, imported from the base folder;
- a mapping ``{command: "python train.py", params: {...}}``: an unchanged program, run
  once per run (:mod:`sweeplab.core.command`).

Relative paths are read from a base folder (a grid spec's folder, or the current one for
``sweeplab run``); that folder, and a file's own folder, go on ``sys.path`` so the code
imports its neighbours as it would when run as a script. A file is loaded once per
process, under its own name when that is free (so ``import mystudy`` elsewhere finds the
same module), and a script that is this process's ``__main__`` is not loaded twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.util
import inspect
import io
import re
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

from sweeplab.core.config import StudyConfig
from sweeplab.core.registry import Study, get_study, registered_studies
from sweeplab.core.script_check import command_hint, refuse_script
from sweeplab.errors import ConfigError
from sweeplab.protocol import numeric
from sweeplab.suggest import closest_file, did_you_mean

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
DEFAULT_FUNCTION = "run"
"""The function a file reference without ``:function`` names, when it registers none."""

MAX_WARNINGS = 5
"""Values of sweeplab.log that are no numbers, reported one by one; beyond, ignored."""

_FILES: dict[str, ModuleType] = {}
"""Resolved file path -> the module loaded from it (once per process)."""


def resolve(ref: Any, base_dir: str | None = None,
            values: Mapping[str, list[Any]] | None = None) -> Study:
    """:func:`sweeplab.core.registry.resolve_study` (see there)."""
    base = Path(base_dir).resolve() if base_dir else Path.cwd()
    if isinstance(ref, Mapping):
        from sweeplab.core.command import command_study

        return command_study(ref, str(base), values)
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError("study", ref, "give a study: a registered name, ./file.py:function, "
                          "package.module:function or {command: ...}")
    kind, target, attr = split_ref(ref)
    if kind == "name":
        try:
            return get_study(ref)
        except ConfigError:
            registering = registering_file(ref, base)
            if registering is None:
                raise
            raise ConfigError("study", ref, f"not installed; {registering} registers it, so "
                              f"name it by its file: ./{registering}:{ref}") from None
    if kind == "file":
        if " " in target.strip():  # "python train.py": a program, not a file
            raise ConfigError("study", ref, "not a file and function (./train.py:run); "
                              + command_hint(Path(target.split()[-1])))
        path = (base / target).resolve()
        if str(path) not in _FILES and path.is_file() and not _is_main(path):
            refuse_script(path, attr or DEFAULT_FUNCTION, ref)
        module = load_file(path, ref, extra_path=base)
        where = str(path)
    else:
        module = import_module(target, ref, base)
        where = f"module {target}"
    return _study_of(module, attr, ref, str(base), where)


def registering_file(name: str, folder: Path) -> str | None:
    """The ``*.py`` file of ``folder`` whose text registers study ``name``, if any.

    Read as text, never imported: a name alone cannot say which file to run, so the
    file is only named in the error, as the reference that finds it.
    """
    pattern = re.compile(r"register_study\(\s*['\"]" + re.escape(name) + r"['\"]")
    for path in sorted(folder.glob("*.py")):
        try:
            if path.stat().st_size < 1_000_000 and pattern.search(
                    path.read_text(encoding="utf-8", errors="replace")):
                return path.name
        except OSError:
            continue
    return None


def split_ref(ref: str) -> tuple[str, str, str]:
    """``(kind, target, attribute)``: kind ``name``, ``file`` or ``module``."""
    left, colon, attr = ref.rpartition(":")
    if not colon:
        return ("file", ref, "") if ref.endswith(".py") else ("name", ref, "")
    if left.endswith(".py") or "/" in left or left.startswith("."):
        return "file", left, attr
    if MODULE_NAME.match(left):
        return "module", left, attr
    return "name", ref, ""


def load_file(path: Path, ref: str, extra_path: Path | None = None) -> ModuleType:
    """The module of the Python file ``path``, loaded once per process.

    ``ref`` names the reference in errors. The file's folder and ``extra_path`` go on
    ``sys.path`` first. An import that fails is a :class:`ConfigError` with the
    exception's line, so a broken file stops a grid before it starts.
    """
    key = str(path)
    if key in _FILES:
        return _FILES[key]
    if not path.is_file():
        near = closest_file(path, suffixes=(".py",))
        hint = f" (did you mean {near}?)" if near else ""
        raise ConfigError("study", ref, f"file {path} not found{hint}")
    if _is_main(path):  # the running script itself (python train.py, or its workers)
        _FILES[key] = sys.modules["__main__"]
        return _FILES[key]
    for folder in (extra_path, path.parent):
        _on_path(folder)
    name = path.stem if MODULE_NAME.match(path.stem) else "study"
    taken = sys.modules.get(name)
    if taken is not None and not _same_file(getattr(taken, "__file__", None), path):
        name = f"sweeplab_study_{path.stem}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        name = re.sub(r"\W", "_", name)
    if name in sys.modules:
        module = sys.modules[name]
    else:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigError("study", ref, f"{path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        said = io.StringIO()  # a script's argparse complains here before it exits
        try:
            with contextlib.redirect_stderr(said):
                spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            if isinstance(exc, KeyboardInterrupt):
                raise
            if isinstance(exc, SystemExit):  # a script's argparse read sweeplab's argv
                raise ConfigError("study", ref, f"importing {path} ran it and it exited "
                                  f"({exc.code}); put its script part under if __name__ == "
                                  "'__main__':, or " + command_hint(path)) from None
            sys.stderr.write(said.getvalue())
            raise ConfigError("study", ref, f"importing {path} failed: "
                              f"{type(exc).__name__}: {_line(exc)}") from None
        sys.stderr.write(said.getvalue())
    _FILES[key] = module
    return module


def import_module(name: str, ref: str, base: Path) -> ModuleType:
    """Import module ``name`` with ``base`` on ``sys.path``; failures as ConfigError."""
    _on_path(base)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise ConfigError("study", ref, f"no module {exc.name!r} in {base} or the "
                              "installed packages") from None
        raise ConfigError("study", ref, f"importing {name} failed: {_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed as it was imported
        raise ConfigError("study", ref, f"importing {name} failed: "
                          f"{type(exc).__name__}: {_line(exc)}") from None


def _study_of(module: ModuleType, attr: str, ref: str, base_dir: str, where: str) -> Study:
    """The study ``attr`` names in ``module`` (a function or a registered name)."""
    mine = [s for s in registered_studies() if s.module == module.__name__]
    if not attr:
        if len(mine) == 1:
            return replace(mine[0], ref=ref, base_dir=base_dir, seeds="imported")
        attr = DEFAULT_FUNCTION
    fn = getattr(module, attr, None)
    if fn is None:
        by_name = [s for s in mine if s.name == attr]
        if by_name:
            return replace(by_name[0], ref=ref, base_dir=base_dir, seeds="imported")
        functions = sorted(k for k, v in vars(module).items()
                           if inspect.isfunction(v) and v.__module__ == module.__name__
                           and not k.startswith("_"))
        names = functions + [s.name for s in mine]
        raise ConfigError("study", ref, f"{where} has no function {attr!r}"
                          + did_you_mean(attr, names) + "; it has: "
                          + (", ".join(names) or "no functions"))
    return study_from_function(fn, ref, base_dir, module.__name__)


def study_from_function(fn: Any, ref: str, base_dir: str, module: str) -> Study:
    """A :class:`Study` of ``fn``: its registration if it has one, else from its signature.

    Its runs seed torch only if the user's code imports it (``seeds="imported"``).

    ``fn`` may be a function wrapped by :func:`sweeplab.main`; its config is then the one
    the wrapper names. A function of one parameter (``run(cfg)``) gets its context
    through :func:`sweeplab.log`.
    """
    config = None
    script = getattr(fn, "__sweeplab_main__", None)
    if script is not None:
        fn, config = script.fn, script.config
    for study in registered_studies():
        if study.fn is fn:
            return replace(study, ref=ref, base_dir=base_dir, seeds="imported")
    if not callable(fn):
        raise ConfigError("study", ref, f"{getattr(fn, '__name__', fn)!r} is not a function")
    config = config or config_of(fn, ref)
    doc = (inspect.getdoc(fn) or "").strip().splitlines()
    return Study(_display_name(ref), config, _with_context(fn),
                 description=doc[0] if doc else "", module=module, ref=ref, base_dir=base_dir,
                 seeds="imported")


def _checked(fn: Callable[..., Any], result: Any) -> Any:
    """``result`` of the user's ``fn``, if it is final metrics (a mapping) or ``None``;
    otherwise a TypeError that says what to return (the run fails with that line)."""
    if result is not None and not isinstance(result, Mapping):
        shown = repr(result)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise TypeError(f"{getattr(fn, '__name__', 'run')} returned {shown} "
                        f"({type(result).__name__}); return the final metrics as a dict, "
                        "e.g. {'loss': 0.1}, or None")
    return result


def config_of(fn: Callable[..., Any], ref: str) -> type[StudyConfig]:
    """The StudyConfig class ``fn``'s first parameter is annotated with."""
    usage = (f"type its first parameter with the config: def {getattr(fn, '__name__', 'run')}"
             "(cfg: MyConfig, ctx), where class MyConfig(sweeplab.StudyConfig) declares "
             "the parameters")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    if not params:
        raise ConfigError("study", ref, f"the function takes no config; {usage}")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # noqa: BLE001 - an annotation that names something undefined
        raise ConfigError("study", ref, f"its annotations cannot be read ({_line(exc)}); "
                          f"{usage}") from None
    cls = hints.get(params[0].name)
    if isinstance(cls, type) and issubclass(cls, StudyConfig):
        return cls
    if cls is not None and hasattr(cls, "model_fields"):
        raise ConfigError("study", ref, f"{cls.__name__} must derive from "
                          "sweeplab.StudyConfig (not pydantic.BaseModel)")
    raise ConfigError("study", ref, usage)


def _with_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(cfg, ctx)``, or ``fn(cfg)`` called with :func:`sweeplab.log` routed to ctx;
    either way a result that is no mapping fails the run with a line saying so."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) != 1:
        @functools.wraps(fn)
        def checked(cfg: Any, ctx: Any) -> Any:
            return _checked(fn, fn(cfg, ctx))

        return checked

    def run(cfg: Any, ctx: Any) -> Any:
        from sweeplab.protocol import current_context

        receiver = _Receiver(ctx)
        with current_context(receiver):
            result = _checked(fn, fn(cfg))
        return receiver.finals(result)

    run.__doc__ = fn.__doc__
    run.__name__ = getattr(fn, "__name__", "run")
    return run


class _Receiver:
    """:func:`sweeplab.log` inside a run of this process: rows to the run's context, the
    last value of each metric kept as the final metrics when the function returns none."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.last: dict[str, Any] = {}
        self.final_values: dict[str, Any] = {}
        self.bad = 0

    def log(self, step: int, **metrics: Any) -> None:
        metrics = numeric(metrics, lambda problem: self._warn(f"sweeplab.log at step {step}: "
                                                              f"{problem}"))
        if metrics:
            self.ctx.log(step, **metrics)
            self.last.update(metrics)

    def final(self, **metrics: Any) -> None:
        self.final_values.update(numeric(metrics, lambda problem: self._warn(
            f"sweeplab.final: {problem}")))

    def _warn(self, problem: str) -> None:
        """The first :data:`MAX_WARNINGS` non-numbers, each a warning of the run."""
        self.bad += 1
        if self.bad <= MAX_WARNINGS:
            self.ctx.warn(f"{problem}; ignored")

    def finals(self, result: Any) -> dict[str, Any]:
        """What the function returned, else the last value logged of each metric; updated
        by :func:`sweeplab.final`. Nothing at all is a warning that says how to report."""
        out = {**(self.last if result is None else dict(result)), **self.final_values}
        if not out and not self.bad:
            self.ctx.warn("the run reported no metrics; call sweeplab.log(step, loss=...) "
                          "or return them, e.g. {'loss': 0.1}")
        return out


def _display_name(ref: str) -> str:
    """The study's name in run files: ``mystudy:run`` for ``./src/mystudy.py:run``."""
    kind, target, attr = split_ref(ref)
    if kind == "file":
        return f"{Path(target).stem}:{attr or DEFAULT_FUNCTION}"
    return ref


def _on_path(folder: Path | None) -> None:
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def _is_main(path: Path) -> bool:
    """Whether ``path`` is this process's ``__main__`` script."""
    main = sys.modules.get("__main__")
    return main is not None and _same_file(getattr(main, "__file__", None), path)


def _same_file(name: str | None, path: Path) -> bool:
    try:
        return name is not None and Path(name).resolve() == path
    except OSError:
        return False


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
