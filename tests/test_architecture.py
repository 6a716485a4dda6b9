"""The layers of docs/architecture.md, kept true: every import of every module of
src/sweeplab (those inside functions too) points down or sideways within its layer, and
the framework names no study.

The import graph is read from the source (ast), not by importing it, so an import that
only runs on some path counts the same as one at the top of a file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "sweeplab"

LAYERS: list[tuple[str, ...]] = [
    ("errors", "suggest", "protocol"),
    ("core",),
    ("track",),
    ("execute",),
    ("analysis", "data", "batched"),
    ("studies", "agent"),
    ("cli",),
]
"""Lowest first. A module may import its own part of sweeplab and any part of a lower
layer. Parts sharing a layer are independent, except the foundation's (errors words its
suggestions with suggest), and each study is independent of every other study."""

FOUNDATION_SIDEWAYS = {("errors", "suggest")}
"""The imports allowed between parts of one layer."""

CLI_MODULES = re.compile(r"^sweeplab\.(cli(\..*)?|__main__|studies\.[a-z_]+\.cli|agent\.cli)$")
"""CLI code: the framework's verbs, and a plugin's own verbs (a study's ``cli`` module, the
agent's), which may use ``sweeplab.cli`` and which nothing below the CLI imports."""

FACADE = {"sweeplab"}
"""``sweeplab/__init__.py`` re-exports the public API lazily (by name, no import statement)."""

FRAMEWORK = ("core", "execute", "analysis", "track", "cli")
STUDY_KNOWLEDGE = re.compile(
    r"implicit.bias|ImplicitBias|minima.volume|anchor-composite|inverse-sequence|volume")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in the file, wherever it stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if (SRC / Path(*f"{target}.{alias.name}".split("."))).is_dir()]
    return [(line, target) for line, target in found if target.split(".")[0] == "sweeplab"]


def part(module: str) -> str:
    """The part of sweeplab a module belongs to: ``core``, ``studies.volume``, ``cli``, ..."""
    if CLI_MODULES.match(module):
        return "cli"
    pieces = module.split(".")
    if len(pieces) == 1:
        return "sweeplab"
    if pieces[1] == "studies" and len(pieces) > 2:
        return f"studies.{pieces[2]}"
    return pieces[1]


def layer(name: str) -> int:
    top = name.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{name} is in no layer of LAYERS: add it (and to the docs)")


def violation(source: str, target: str) -> str | None:
    """Why ``source`` may not import ``target`` (None: it may)."""
    if source in FACADE or target in FACADE:
        return None
    a, b = part(source), part(target)
    if a == b:
        return None
    if b == "cli":
        return "imports the CLI"
    if layer(a) < layer(b):
        return f"{a} (layer {layer(a)}) imports the higher {b} (layer {layer(b)})"
    if layer(a) == layer(b) and (a.split(".")[0], b.split(".")[0]) not in FOUNDATION_SIDEWAYS:
        if a.startswith("studies.") and b == "studies":
            return None  # the studies package's own __init__
        return f"{a} imports {b}, a part of its own layer"
    return None


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_part_of_sweeplab_is_in_a_layer():
    for path in all_modules():
        name = module_name(path)
        if name not in FACADE:
            layer(part(name))


def test_imports_point_down_the_layers():
    problems = [f"{path.relative_to(SRC)}:{line}: {why} ({target})"
                for path in all_modules()
                for line, target in imports(path)
                if (why := violation(module_name(path), target))]
    assert not problems, "\n".join(problems)


def test_the_framework_names_no_study():
    hits = [f"{path.relative_to(SRC)}:{number}: {text.strip()}"
            for package in FRAMEWORK
            for path in sorted((PACKAGE / package).rglob("*.py"))
            for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if STUDY_KNOWLEDGE.search(text)]
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("source,target,allowed", [
    ("sweeplab.core.context", "sweeplab.track.local", False),
    ("sweeplab.core.grid", "sweeplab.studies.implicit_bias.config", False),
    ("sweeplab.execute.job", "sweeplab.execute.single", True),
    ("sweeplab.studies.volume.pipeline", "sweeplab.studies.anchor.train", False),
    ("sweeplab.studies.volume.cli", "sweeplab.cli.grid", True),
    ("sweeplab.studies.volume.pipeline", "sweeplab.cli.console", False),
    ("sweeplab.agent.loop", "sweeplab.studies.implicit_bias.model", False),
    ("sweeplab.analysis.pipeline", "sweeplab.data.mnist", False),
    ("sweeplab.cli.run", "sweeplab.studies.volume.config", True),
    ("sweeplab.errors", "sweeplab.suggest", True),
])
def test_the_rule_itself(source, target, allowed):
    assert (violation(source, target) is None) == allowed


def test_imports_inside_functions_count(tmp_path):
    path = PACKAGE / "core" / "registry.py"
    found = dict((target, line) for line, target in imports(path))
    assert "sweeplab.core.study_ref" in found  # imported inside resolve_study only


def graph_of(package: str) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports (anywhere in the file)."""
    modules = {module_name(p): p for p in sorted((PACKAGE / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for _, target in imports(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` (empty: none)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_execute_has_no_import_cycle():
    """The job is data (job.py), the worker runs it (worker.py): no module of execute
    imports one that imports it back, even lazily."""
    assert cycle(graph_of("execute")) == []
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
