"""The query language of ``sweeplab ls --where``: comparisons joined by and/or/not.

Grammar (keywords case-insensitive)::

    expr       := term ('or' term)*
    term       := factor ('and' factor)*
    factor     := 'not' factor | '(' expr ')' | comparison
    comparison := KEY OP VALUE          OP: = == != < <= > >=

A VALUE is a bare word (``lp``, ``0.1``, ``-2``, ``1e-3``, ``[0,1]``, ``true``) or a
quoted string (``'a b'``, ``"and"``). Example: ``potential=lp and (L=2 or L=3)``.

The expression is parsed into a small tree; :func:`to_sql` turns it into a SQL condition
with ``?`` placeholders, the caller supplying the SQL of one comparison. Values never
enter the SQL text, and operators come from a fixed table.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sweeplab.errors import ConfigError

OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
"""Operator as typed -> operator in SQL (a fixed table: never user text in the SQL)."""

KEYWORDS = ("and", "or", "not")
EXAMPLE = "e.g. potential=lp and (L=2 or L=3)"

_TOKEN = re.compile(
    r"""\s*(?:(?P<op>==|!=|<=|>=|=|<|>)
         |(?P<paren>[()])
         |(?P<quoted>'[^']*'|"[^"]*")
         |(?P<word>[^\s()=!<>'"]+))""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Comparison:
    """``key op value``; ``quoted`` values always compare as text."""

    key: str
    op: str
    value: str
    quoted: bool = False

    def number(self) -> float | None:
        """The value as a number when it is one (and not quoted), else ``None``."""
        return None if self.quoted else as_number(self.value)

    def text(self) -> str:
        """The value as text, spelled the way stored values are (see :func:`as_text`)."""
        if self.quoted:
            return self.value
        lowered = self.value.lower()
        if lowered in ("true", "false"):
            return lowered
        if lowered in ("none", "null"):
            return "null"
        return self.value


@dataclass(frozen=True)
class Logical:
    """``and``/``or`` of two or more parts."""

    op: str
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``not`` of a part."""

    part: Node


Node = Comparison | Logical | Not


def as_number(text: str) -> float | None:
    """``text`` as a finite-or-infinite float, or ``None`` (``nan`` is not a number here)."""
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def as_text(value: Any) -> str:
    """A stored value as text for comparisons and display.

    Booleans are ``true``/``false``, ``None`` is ``null``, lists and mappings compact
    JSON (``[0,1]``), numbers as Python writes them (``0.1``, ``2``, ``inf``).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def _error(text: str, reason: str) -> ConfigError:
    return ConfigError("where", text, f"{reason}; {EXAMPLE}")


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text[pos:]) - len(text[pos:].lstrip()) + pos
            char = text[start]
            what = "an unclosed quote" if char in "'\"" else f"unexpected {char!r}"
            raise _error(text, f"{what} at character {start + 1}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "quoted":
            value = value[1:-1]
        elif kind == "word" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append((kind, value, start))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def where(self) -> str:
        token = self.peek()
        return "at the end" if token is None else f"at character {token[2] + 1}"

    def accept(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        if token and token[0] == kind and (value is None or token[1] == value):
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        if not self.tokens:
            raise _error(self.text, "an empty expression")
        node = self.expr()
        token = self.peek()
        if token is not None:
            shown = "')'" if token[1] == ")" else repr(token[1])
            raise _error(self.text, f"unexpected {shown} {self.where()} "
                                    "(join comparisons with 'and' or 'or')")
        return node

    def expr(self) -> Node:
        parts = [self.term()]
        while self.accept("keyword", "or"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else Logical("or", tuple(parts))

    def term(self) -> Node:
        parts = [self.factor()]
        while self.accept("keyword", "and"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else Logical("and", tuple(parts))

    def factor(self) -> Node:
        if self.accept("keyword", "not"):
            return Not(self.factor())
        if self.accept("paren", "("):
            node = self.expr()
            if not self.accept("paren", ")"):
                raise _error(self.text, f"expected ')' {self.where()}")
            return node
        token = self.peek()
        if token is None or token[0] not in ("word", "quoted"):
            raise _error(self.text, f"expected a comparison KEY OP VALUE {self.where()}")
        self.i += 1
        key = token[1]
        op = self.peek()
        if op is None or op[0] != "op":
            raise _error(self.text, f"expected one of = != < <= > >= after {key!r} "
                                    f"{self.where()}")
        self.i += 1
        value = self.peek()
        if value is None or value[0] not in ("word", "quoted"):
            raise _error(self.text, f"expected a value after {key}{op[1]} {self.where()}")
        self.i += 1
        return Comparison(key, OPERATORS[op[1]], value[1], quoted=value[0] == "quoted")


def parse_where(text: str) -> Node:
    """Parse a ``--where`` expression; :class:`ConfigError` (key ``where``) if malformed."""
    return _Parser(text).parse()


def comparisons(node: Node) -> list[Comparison]:
    """Every comparison in ``node``, left to right."""
    if isinstance(node, Comparison):
        return [node]
    if isinstance(node, Not):
        return comparisons(node.part)
    return [c for part in node.parts for c in comparisons(part)]


def to_sql(
    node: Node, comparison_sql: Callable[[Comparison], tuple[str, list[Any]]]
) -> tuple[str, list[Any]]:
    """A SQL condition for ``node`` and its parameters, in placeholder order."""
    if isinstance(node, Comparison):
        return comparison_sql(node)
    if isinstance(node, Not):
        sql, params = to_sql(node.part, comparison_sql)
        return f"NOT ({sql})", params
    pieces, params = [], []
    for part in node.parts:
        sql, part_params = to_sql(part, comparison_sql)
        pieces.append(f"({sql})")
        params.extend(part_params)
    return f" {node.op.upper()} ".join(pieces), params
