"""Command-line flags generated from a study's typed config.

Every field becomes ``--name`` (and ``--name-with-dashes`` when the name has
underscores); booleans get ``--name/--no-name``; pairs take two values. Values are
passed to the config as strings and validated by pydantic there, so a bad flag and a bad
YAML key produce the same one-line error.
"""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from sweeplab.errors import ConfigError
from sweeplab.suggest import did_you_mean

NONE_WORDS = ("none", "null")


class UsageError(ConfigError):
    """A command line argparse rejected (unknown flag, missing value, ...)."""

    def __init__(self, message: str):
        self.message = message
        super().__init__("arguments", None, message)

    def _message(self) -> str:
        return self.message


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of printing usage.

    Flags must be spelled in full (no prefix matching: ``--epoch`` is not silently
    ``--epochs``); an unknown one gets a "did you mean" from :func:`reject_unknown`.
    The description is shown as plain text (reST double backticks removed).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        if kwargs.get("description"):
            kwargs["description"] = plain(kwargs["description"])
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once: not when its help already says it, nor None/False/[]."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def plain(text: str) -> str:
    """Docstring text for a terminal: ``code`` and :role:`x` markup removed."""
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _origin_args(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _origin_args(non_none[0])
    return origin, args


def _allows_none(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _fields(cls: type[BaseModel]) -> dict[str, Any]:
    return cls.ordered_fields() if hasattr(cls, "ordered_fields") else dict(cls.model_fields)


def add_config_flags(parser: argparse.ArgumentParser, cls: type[BaseModel]) -> list[str]:
    """Add one flag per field of ``cls``; returns the canonical flag names.

    Each help line ends with the field's default, shown once (the parser's own defaults
    are suppressed so that values the user gave can be told from defaults).
    """
    names = []
    group = parser.add_argument_group(f"{cls.__name__} parameters")
    for name, field in _fields(cls).items():
        flags = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        origin, args = _origin_args(field.annotation)
        default = field.get_default(call_default_factory=True)
        help_text = field.description or ""
        if "default" not in help_text:
            help_text = f"{help_text} (default: {_show(default)})".strip()
        kwargs: dict[str, Any] = dict(dest=name, default=argparse.SUPPRESS, help=help_text)
        if field.annotation is bool:
            kwargs.update(nargs="?", const=True, metavar="BOOL")
            group.add_argument(
                f"--no-{name.replace('_', '-')}",
                dest=name,
                action="store_false",
                default=argparse.SUPPRESS,
                help=f"same as --{name} false",
            )
        elif origin is tuple and args and args[-1] is Ellipsis:  # tuple[int, ...]
            kwargs.update(nargs="*", metavar=_item_metavar(args[0]))
        elif origin is tuple:
            kwargs.update(nargs=len(args), metavar=tuple(a.__name__.upper() for a in args))
        elif origin is list:
            kwargs.update(nargs="+")
        elif origin is typing.Literal:
            kwargs["metavar"] = "{" + ",".join(map(str, args)) + "}"
        else:
            kwargs["metavar"] = name.upper()
        group.add_argument(*flags, **kwargs)
        names.append(f"--{name}")
    return names


def _item_metavar(item: Any) -> str:
    """``{png,pdf}`` for a tuple of literals, ``INT`` for a tuple of ints."""
    if typing.get_origin(item) is typing.Literal:
        return "{" + ",".join(map(str, typing.get_args(item))) + "}"
    return item.__name__.upper()


def _show(value: Any) -> str:
    if value is None:
        return NONE_WORDS[0]
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def explicit_values(ns: argparse.Namespace, cls: type[BaseModel]) -> dict[str, Any]:
    """The config values the user gave, with ``none``/``null`` mapped to None."""
    out = {}
    for name, field in _fields(cls).items():
        if not hasattr(ns, name):
            continue
        value = getattr(ns, name)
        if (
            isinstance(value, str)
            and value.lower() in NONE_WORDS
            and _allows_none(field.annotation)
        ):
            value = None
        out[name] = value
    return out


def reject_unknown(
    extras: Sequence[str],
    allowed: Sequence[str],
    command: str,
    aliases: dict[str, str] | None = None,
) -> None:
    """Raise a short one-line :class:`UsageError` for an argument the parser did not know.

    The line names the argument, the closest allowed flag (by a config field's declared
    aliases, then by spelling) and where to see every flag; it does not list them all.
    ``aliases`` maps another name (``learning_rate``) to an allowed flag (``--lr``).
    """
    if not extras:
        return
    bad = next((a for a in extras if a.startswith("-")), extras[0])
    flag = bad.split("=", 1)[0]
    kind = "flag" if flag.startswith("-") else "argument"
    hint = did_you_mean(flag, allowed, aliases) if kind == "flag" else ""
    raise UsageError(f"unknown {kind} {flag!r}{hint}; see '{command} --help' for all flags")


def config_aliases(cls: type[BaseModel]) -> dict[str, str]:
    """A config's declared field aliases as alias -> flag (``learning_rate`` -> ``--lr``)."""
    known = cls.field_aliases() if hasattr(cls, "field_aliases") else {}
    return {alias: f"--{name}" for alias, name in known.items()}
