"""Telling a script from a study file before importing it.

``sweeplab run train.py`` or ``study: ./train.py`` names a file to import and a function
in it. When the file is an unchanged script, importing it would run the script: its
argparse would read sweeplab's own command line and exit with a usage message about
flags the user never gave, or its training would start inside the import. So the file
is parsed first (never run): a file that runs code at its top level (a call, a loop)
and has no such function (nor any ``register_study``, which may name it) is refused
with one line that says how such a script runs: as a command study.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sweeplab.errors import ConfigError
from sweeplab.suggest import did_you_mean


def command_hint(path: Path) -> str:
    """How the script ``path`` runs unchanged: as a command, one run or a spec's."""
    words = f"python {path.name}" if path.suffix == ".py" else str(path.name)
    return (f"a script runs unchanged as a command: sweeplab run --command \"{words}\" "
            f"[--its flags] (in a spec: command: {words})")


def refuse_script(path: Path, attr: str, ref: str) -> None:
    """Raise a :class:`ConfigError` if ``path`` surely has no function ``attr``.

    Only a file Python can parse and whose top level binds every name visibly
    (no ``from x import *``) is judged; anything else is left to the import.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        tree = ast.parse(text, filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return
    if "register_study" in text:
        return
    names: set[str] = set()
    functions = [node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and not node.name.startswith("_")]
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        for inner in ast.walk(node):  # also what an if/try block at the top level binds
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(inner.name)
            elif isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                names.add(inner.id)
            elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                for alias in inner.names:
                    if alias.name == "*":
                        return
                    names.add(alias.asname or alias.name.split(".")[0])
    if attr in names or not any(_runs_code(node) for node in tree.body):
        return  # a module whose import does nothing: the import says what is missing
    has = ("; it has: " + ", ".join(functions)) if functions else ""
    raise ConfigError("study", ref, f"{path} has no function {attr!r}"
                      + did_you_mean(attr, functions) + has + " and runs code when "
                      "imported (a script?); " + command_hint(path))


def _runs_code(node: ast.stmt) -> bool:
    """Whether a top-level statement does work on import (a call, a loop, a with): what
    a script does and a module of functions does not. Assignments, ifs and trys are
    given the benefit of the doubt (``HERE = Path(__file__).parent`` is common)."""
    if isinstance(node, ast.Expr):
        return not isinstance(node.value, ast.Constant)  # a docstring does nothing
    return isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith))
