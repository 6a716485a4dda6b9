"""The command study: an unchanged program (any script, any language) run once per run.

A grid spec names it with ``study: {command: ..., params: ...}`` (or the top-level keys
``command:`` and ``params:``)::

    command: python train.py            # the grid's parameters follow as flags
    command: "python train.py --lr {lr} --seed {seed} --out {run_dir}"   # a template

Without ``{...}`` placeholders every parameter follows the command as ``--name value``
(``True`` as a bare ``--name``, ``False`` and ``None`` left out, a list as
``--name a b``); with them the command is a template (``str.format``: ``{lr:.3g}`` works;
``{run_dir}`` is the run's directory) and every parameter must appear in it. ``python``
(or ``python3``) first means the interpreter sweeplab runs in, and a word naming a file
of the spec's folder (``train.py``) becomes its absolute path, since the program runs in
its run directory.

Each parameter has a type, so a bad value is refused before anything runs: from the
optional ``params:`` schema, else from the values the spec gives it (all integers: int;
numbers: float; all strings: str; ...; values of different kinds are refused, naming
the key). A schema entry is a type name (``float``, ``int``, ``str``, ``bool``,
``list``), a list of allowed values, or a mapping with ``type``, ``default``,
``choices``, ``ge``/``gt``/``le``/``lt`` bounds and ``description``. With a schema, a
spec key it does not declare is refused too.

How the program runs and reports metrics: :mod:`sweeplab.core.command_run` and
:mod:`sweeplab.protocol`.
"""

from __future__ import annotations

import functools
import json
import shlex
import string
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, create_model

from sweeplab.core.config import StudyConfig
from sweeplab.core.registry import Study
from sweeplab.errors import ConfigError
from sweeplab.suggest import did_you_mean

COMMAND_KEYS = ("command", "params")
"""Keys of a ``study: {command: ...}`` mapping."""
PARAM_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool,
                                "list": list}
PARAM_KEYS = ("type", "default", "choices", "ge", "gt", "le", "lt", "description")
"""Keys of a mapping entry of ``params:``."""
RUN_DIR_FIELD = "run_dir"
"""The template placeholder for the run's directory (not a parameter)."""
PYTHON_WORDS = ("python", "python3")
"""A command's first word meaning this very interpreter (:data:`sys.executable`)."""

_CACHE: dict[str, Study] = {}
"""Complete reference -> its study, so one process makes each config class once."""


@dataclass(frozen=True)
class CommandSpec:
    """A program to run: its words, its typed parameters, and where relative files live."""

    words: tuple[str, ...]
    params: dict[str, dict[str, Any]]
    base_dir: str
    template: bool

    def argv(self, values: Mapping[str, Any], run_dir: str) -> list[str]:
        """The program's argv for one run: parameters as flags or filled into the template."""
        if self.template:
            fill = {**values, RUN_DIR_FIELD: run_dir}
            filled = [(word, word.format_map(fill)) for word in self.words]
            words = [new for old, new in filled if new or not old]  # {flag} set to "": gone
        else:
            words = list(self.words) + flags(values, self.params)
        base = Path(self.base_dir)
        out = []
        for i, word in enumerate(words):
            if i == 0 and word in PYTHON_WORDS:
                word = sys.executable
            elif not word.startswith("-") and not Path(word).is_absolute() \
                    and (base / word).is_file():
                word = str(base / word)
            out.append(word)
        return out


def flags(values: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """``--name value`` for each declared parameter (see the module doc for the kinds)."""
    out: list[str] = []
    for name in params:
        value = values.get(name)
        if value is None or value is False:
            continue
        if value is True:
            out.append(f"--{name}")
        elif isinstance(value, (list, tuple)):
            out += [f"--{name}", *(_word(v) for v in value)]
        else:
            out += [f"--{name}", _word(value)]
    return out


def _word(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def command_study(ref: Mapping[str, Any], base_dir: str,
                  values: Mapping[str, Sequence[Any]] | None = None) -> Study:
    """The study of a ``{command: ..., params: ...}`` reference (see the module doc).

    ``values`` (parameter -> the values a grid gives it) types the parameters when
    ``params`` is absent. The study's :attr:`~Study.ref` holds the complete schema, so a
    worker resolves it to the same config without the grid.
    """
    for key in ref:
        if key not in COMMAND_KEYS:
            raise ConfigError(f"study.{key}", ref[key], "unknown key of a command study"
                              + did_you_mean(str(key), COMMAND_KEYS)
                              + "; allowed keys: " + ", ".join(COMMAND_KEYS))
    words = _words(ref.get("command"))
    template = _placeholders(words)
    if ref.get("params") is not None:
        params = {name: _param(name, entry) for name, entry in
                  _mapping(ref["params"], "params").items()}
    elif values is not None:
        params = {name: _inferred(name, vals) for name, vals in values.items()}
    else:
        params = {name: {"type": "str"} for name in template if name != RUN_DIR_FIELD}
    if template:
        _check_template(template, params, values or {})
    if values is not None:
        _check_given(params, values)
    complete = {"command": ref["command"], "params": params}
    key = json.dumps([complete, base_dir], sort_keys=True, default=str)
    if key not in _CACHE:
        spec = CommandSpec(tuple(words), params, base_dir, bool(template))
        _CACHE[key] = Study(
            name=program_name(words), config=_config_class(params),
            fn=functools.partial(_run, spec), description=f"runs: {' '.join(words)}",
            ref=complete, base_dir=base_dir, step_key="step", seeds="none",
        )
    return _CACHE[key]


def _run(spec: CommandSpec, cfg: StudyConfig, ctx: Any) -> dict[str, Any]:
    from sweeplab.core.command_run import run_command

    return run_command(spec, cfg, ctx)


def program_name(words: Sequence[str]) -> str:
    """The study's name: the script a command runs (``train.py``), else its program."""
    scripts = [w for w in words[1:] if w.endswith(".py")]
    return Path(scripts[0] if scripts else words[0]).name


def _words(command: Any) -> list[str]:
    """The command as words: a string split as a shell would, or a list of strings."""
    example = 'e.g. command: "python train.py" or command: [python, train.py]'
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError as exc:
            raise ConfigError("command", command, f"cannot split it into words ({exc})") \
                from None
    elif isinstance(command, list) and all(isinstance(w, (str, int, float)) for w in command):
        words = [str(w) for w in command]
    else:
        raise ConfigError("command", command, f"must be a string or a list of words; {example}")
    if not words:
        raise ConfigError("command", command, f"is empty; {example}")
    return words


def _placeholders(words: Sequence[str]) -> list[str]:
    """The parameter names ``{...}`` fields of the words use, in order of appearance."""
    names: list[str] = []
    for word in words:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(word) if f is not None]
        except ValueError as exc:
            raise ConfigError("command", word, f"not a valid template ({exc}); write "
                              "a literal brace as {{ or }}") from None
        for field in fields:
            name = field.split(".")[0].split("[")[0]
            if not name.isidentifier():
                raise ConfigError("command", word, "placeholders name parameters, "
                                  "e.g. {lr}")
            if name not in names:
                names.append(name)
    return names


def _check_given(params: Mapping[str, Mapping[str, Any]],
                 values: Mapping[str, Sequence[Any]]) -> None:
    """Every declared parameter without a default is given a value by the spec."""
    for name, entry in params.items():
        if "default" not in entry and name not in values:
            raise ConfigError(f"params.{name}", None, "declared without a default and not set "
                              "by the spec; give it a value (fixed:, grid:, zip:) or a "
                              "default")


def _check_template(used: Sequence[str], params: Mapping[str, Any],
                    values: Mapping[str, Sequence[Any]]) -> None:
    """Every placeholder a parameter and every parameter in the template."""
    for name in used:
        if name != RUN_DIR_FIELD and name not in params:
            raise ConfigError("command", "{" + name + "}", "uses a parameter the spec does "
                              "not set" + did_you_mean(name, params) + "; parameters: "
                              + (", ".join(params) or "none"))
    for name in params:
        if name not in used:
            shown = list(values.get(name, ())) or None
            raise ConfigError(name, shown, f"not used by the command template; add {{{name}}} "
                              "to the command or drop the parameter")


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(key, value, "must be a mapping of parameter -> type, e.g. "
                          "{lr: float, seed: int}")
    return dict(value)


def _check_name(name: str, key: str) -> None:
    if not (name.isidentifier() and not name.startswith("_")):
        raise ConfigError(key, name, "a parameter name is letters, digits and _ (it becomes "
                          "--name); for a flag with dashes use the template form: "
                          "--batch-size {batch_size}")


def _param(name: str, entry: Any) -> dict[str, Any]:
    """A ``params:`` entry as ``{type, [default], [choices], [bounds], [description]}``."""
    key = f"params.{name}"
    _check_name(name, key)
    if isinstance(entry, str):
        entry = {"type": entry}
    elif isinstance(entry, list):
        entry = {"choices": entry}
    elif not isinstance(entry, Mapping):
        raise ConfigError(key, entry, "a type (" + ", ".join(PARAM_TYPES) + "), a list of "
                          "allowed values, or a mapping with " + ", ".join(PARAM_KEYS))
    out: dict[str, Any] = {}
    for k, v in entry.items():
        if k not in PARAM_KEYS:
            raise ConfigError(f"{key}.{k}", v, "unknown key" + did_you_mean(str(k), PARAM_KEYS)
                              + "; allowed keys: " + ", ".join(PARAM_KEYS))
        out[k] = v
    if "choices" in out:
        choices = out["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{key}.choices", choices, "a non-empty list of allowed values")
        out.setdefault("type", _kind(f"{key}.choices", choices))
    kind = out.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{key}.type", kind, "allowed values are " + ", ".join(PARAM_TYPES))
    for bound in ("ge", "gt", "le", "lt"):
        if bound in out and (isinstance(out[bound], bool)
                             or not isinstance(out[bound], (int, float))):
            raise ConfigError(f"{key}.{bound}", out[bound], "a bound is a number")
    return {k: out[k] for k in PARAM_KEYS if k in out}


def _inferred(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """A parameter typed by the values a spec gives it; optional when a run leaves it unset."""
    from sweeplab.core.grid import DEFAULT

    _check_name(name, name)
    given = [v for v in values if v is not DEFAULT and v is not None]
    out: dict[str, Any] = {"type": _kind(name, given) if given else "str"}
    if len(given) < len(values):
        out["default"] = None
    return out


def _kind(key: str, values: Sequence[Any]) -> str:
    """The one type name all ``values`` share (ints with floats: float)."""
    kinds = {_kind_of(v) for v in values}
    if kinds == {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    shown = ", ".join(sorted(kinds))
    raise ConfigError(key, list(values), f"values of one parameter must share a type (here: "
                      f"{shown}); declare its type under params:, e.g. {{{key}: float}}")


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _config_class(params: Mapping[str, Mapping[str, Any]]) -> type[StudyConfig]:
    """A StudyConfig with one typed field per parameter (bounds and choices enforced)."""
    fields: dict[str, Any] = {}
    for name, entry in params.items():
        kind: Any = PARAM_TYPES[entry["type"]]
        if "choices" in entry:
            kind = Literal[tuple(entry["choices"])]
        if "default" in entry and entry["default"] is None:
            kind = kind | None
        bounds = {b: entry[b] for b in ("ge", "gt", "le", "lt") if b in entry}
        default = entry["default"] if "default" in entry else ...
        fields[name] = (kind, Field(default, description=entry.get("description"), **bounds))
    try:
        return create_model("CommandConfig", __base__=StudyConfig, **fields)
    except Exception as exc:  # noqa: BLE001 - pydantic refuses e.g. a default outside choices
        raise ConfigError("params", dict(params), f"not a valid schema ({exc})") from None
