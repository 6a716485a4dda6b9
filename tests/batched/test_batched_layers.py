"""sweeplab.batched is framework code: it imports core, track and errors, never a study."""

from __future__ import annotations

import ast
from pathlib import Path

import sweeplab.batched

ALLOWED = ("sweeplab.batched", "sweeplab.core", "sweeplab.track", "sweeplab.errors")


def test_the_package_imports_only_the_layers_below_it():
    folder = Path(sweeplab.batched.__file__).parent
    found = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("sweeplab") and not name.startswith(ALLOWED):
                    found.setdefault(path.name, []).append(name)
    assert found == {}
    assert len(list(folder.glob("*.py"))) >= 10
