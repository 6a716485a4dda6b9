"""``sweeplab run --command CMD --name value ...``: one run of an unchanged program.

The grid form of a command study (``command: python train.py`` in a spec) takes its
parameters' types from the spec's values; a single run takes them from its flags, read
as a spec would read them (``0.1`` a float, ``3`` an int, ``true`` a bool, anything else
a string, several words a list, a bare ``--flag`` true)::

    sweeplab run --command "python train.py" --lr 0.1 --seed 0
    sweeplab run --command "python train.py --learning-rate {lr}" --lr 0.1
    sweeplab run --command "python train.py" --params "{lr: {type: float, gt: 0}}" --lr 0.1

``--params`` is the spec's optional schema (bounds, choices, defaults) as YAML. Every
other flag that is not an option of ``sweeplab run`` (``--out_dir``, ``--tag``, ...) is a
parameter of the program. The study is then run exactly as ``sweeplab run STUDY``
runs a study, and ``sweeplab run --resume RUN_DIR`` finds it again from ``config.yaml``.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
from typing import Any

import yaml

from sweeplab.core.registry import Study, resolve_study
from sweeplab.errors import ConfigError

COMMAND_FLAG = "--command"
PARAMS_FLAG = "--params"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLS = {"true": True, "false": False}
HELP = ("-h", "--help")


def is_command_run(argv: list[str]) -> bool:
    """Whether ``sweeplab run ARGV`` runs a program (``--command`` comes first)."""
    return bool(argv) and (argv[0] == COMMAND_FLAG or argv[0].startswith(COMMAND_FLAG + "="))


def command_run_study(argv: list[str], options: argparse.ArgumentParser
                      ) -> tuple[Study, list[str], str]:
    """``(study, the remaining arguments, prog)`` of ``--command CMD [--params YAML] ...``.

    ``options`` parses the flags of ``sweeplab run`` itself (``--out_dir``, trackers):
    with their values, they are no parameters of the program. ``prog`` is the command
    line up to the parameters, shell-quoted, for help, messages and ``config.yaml``.
    """
    command, rest = _take(argv, COMMAND_FLAG, "the program to run, e.g. --command "
                          "\"python train.py\"")
    ref: dict[str, Any] = {"command": command}
    prog = ["sweeplab", "run", COMMAND_FLAG, command]
    if any(a == PARAMS_FLAG or a.startswith(PARAMS_FLAG + "=") for a in rest):
        schema, rest = _take(rest, PARAMS_FLAG, "the parameters' schema as YAML, e.g. "
                             "--params \"{lr: {type: float, gt: 0}}\"")
        ref["params"] = _schema(schema)
        prog += [PARAMS_FLAG, schema]
    _, extras = options.parse_known_args([a for a in rest if a not in HELP])
    values = {name: [value] for name, value in parameters(extras).items()}
    study = resolve_study(ref, os.getcwd(), values)
    return study, rest, shlex.join(prog)


def parameters(args: list[str]) -> dict[str, Any]:
    """``--name value`` arguments as typed parameters: ``{"lr": 0.1, "seed": 0}``."""
    out: dict[str, Any] = {}
    name: str | None = None
    words: list[str] = []
    for arg in [*args, None]:
        if arg is not None and not (arg.startswith("-") and not _NUMBER.match(arg)):
            if name is None:
                raise ConfigError("arguments", arg, "a value without a --name before it; "
                                  "give the program's parameters as --name value")
            words.append(arg)
            continue
        if name is not None:
            out[name] = _value(words)
        if arg is None:
            break
        flag, eq, given = arg.partition("=")
        if not flag.startswith("--") or len(flag) < 3:
            raise ConfigError("arguments", arg, "give the program's parameters as "
                              "--name value")
        name = flag[2:]
        if name in out:
            raise ConfigError(name, out[name], "given twice; give a parameter once "
                              "(several values as one list: --name a b)")
        words = [given] if eq else []
    return out


def _value(words: list[str]) -> Any:
    """A flag's words as a spec would type them: none -> true, one -> a scalar, more -> a
    list."""
    if not words:
        return True
    typed = [_scalar(w) for w in words]
    return typed[0] if len(typed) == 1 else typed


def _scalar(word: str) -> Any:
    if word.lower() in _BOOLS:
        return _BOOLS[word.lower()]
    if _NUMBER.match(word):
        number = float(word)
        return int(word) if re.fullmatch(r"[+-]?\d+", word) else number
    return word


def _take(argv: list[str], flag: str, what: str) -> tuple[str, list[str]]:
    """The value of ``flag`` (``flag VALUE`` or ``flag=VALUE``) and the other arguments."""
    for i, arg in enumerate(argv):
        if arg == flag:
            if i + 1 >= len(argv) or not argv[i + 1].strip():
                raise ConfigError(flag[2:], None, f"give {what}")
            return argv[i + 1], argv[:i] + argv[i + 2:]
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
            if not value.strip():
                raise ConfigError(flag[2:], None, f"give {what}")
            return value, argv[:i] + argv[i + 1:]
    raise ConfigError(flag[2:], None, f"give {what}")


def _schema(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", "") or exc).splitlines()[0]
        raise ConfigError("params", text, f"not YAML ({problem}); e.g. "
                          "--params \"{lr: {type: float, gt: 0}, seed: int}\"") from None
