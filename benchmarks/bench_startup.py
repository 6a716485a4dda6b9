"""Benchmark: what sweeplab's command line costs beside a plain PyTorch script (issue 17).

    .venv/bin/python benchmarks/bench_startup.py [--repeat 3] [--top 12]

Prints, in one invocation, the median wall time over ``--repeat`` repetitions of each
command, each against its target:

- ``sweeplab run implicit-bias --no-plots`` (default config, 1000 epochs) as a ratio to
  ``benchmarks/plain_implicit_bias.py``, the same training written by hand with a metrics
  CSV and a final JSON (target 1.5x); the same run with its figures (target 3x);
- ``sweeplab --help`` (target 0.3 s) and a refused bad value, ``--lr abc`` (target 1 s);
- ``python -c "import torch"`` for reference: the floor of any torch script.

Repetitions are interleaved (each round runs every command once), so that the load of a
shared machine falls on every command alike. Then a phase table of one run without
figures under ``python -X importtime``: its wall time split into imports and the rest
(baselines, training, metrics, files), the top-level packages by their own import time
with the import that brought each in, and the top importers (the imports made by code,
with everything each pulled in).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
PLAIN = str(Path(__file__).with_name("plain_implicit_bias.py"))
SWEEPLAB = [PYTHON, "-m", "sweeplab"]


@dataclass
class Command:
    """One timed command: its argv (``{out}`` is a fresh folder) and its exit status."""

    name: str
    argv: list[str]
    code: int = 0
    times: list[float] = field(default_factory=list)

    def run(self, out: Path) -> subprocess.CompletedProcess:
        argv = [a.replace("{out}", str(out)) for a in self.argv]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        self.times.append(time.perf_counter() - t0)
        if proc.returncode != self.code:
            raise SystemExit(f"{self.name}: exit {proc.returncode}, expected {self.code}\n"
                             f"{proc.stderr[-2000:]}")
        return proc

    @property
    def median(self) -> float:
        return statistics.median(self.times)


COMMANDS = [
    Command("import torch", [PYTHON, "-c", "import torch"]),
    Command("plain PyTorch script", [PYTHON, PLAIN, "--out", "{out}"]),
    Command("run --no-plots", [*SWEEPLAB, "run", "implicit-bias", "--no-plots",
                               "--out_dir", "{out}", "--quiet"]),
    Command("run with figures", [*SWEEPLAB, "run", "implicit-bias", "--out_dir", "{out}",
                                 "--quiet"]),
    Command("sweeplab --help", [*SWEEPLAB, "--help"]),
    Command("bad value refused", [*SWEEPLAB, "run", "implicit-bias", "--lr", "abc"], code=2),
]


@dataclass
class Entry:
    """One line of ``-X importtime``: a module, its own and cumulative microseconds."""

    name: str
    self_us: int
    cum_us: int
    children: list[Entry] = field(default_factory=list)
    parent: Entry | None = None


def parse_importtime(text: str) -> list[Entry]:
    """The import tree of ``-X importtime`` output; returns the roots (imports by code).

    The output is post-order (a module's line follows those of the modules it imported,
    indented two spaces deeper; a root is one space after the bar), so a line adopts the
    pending lines one level deeper.
    """
    pending: dict[int, list[Entry]] = defaultdict(list)
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cum, name = line[len("import time:"):].split("|")
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        entry = Entry(name.strip(), int(own), int(cum), children=pending.pop(depth + 1, []))
        for child in entry.children:
            child.parent = entry
        pending[depth].append(entry)
    return pending.get(0, [])


def walk(entries: list[Entry]):
    for entry in entries:
        yield entry
        yield from walk(entry.children)


def brought_in_by(entry: Entry) -> str:
    """The nearest sweeplab module above ``entry``, else the root import that holds it.

    A root is an import made by running code (a function's import, the entry script's),
    not by a module's import of another.
    """
    node, root = entry, entry
    while node.parent is not None:
        node = node.parent
        root = node
        if node.name.startswith("sweeplab"):
            return node.name
    return "(a root import)" if root is entry else f"(root import {root.name})"


def phase_table(top: int) -> None:
    """One run without figures under ``-X importtime``: imports, packages, importers."""
    with tempfile.TemporaryDirectory() as out:
        argv = [PYTHON, "-X", "importtime", "-m", "sweeplab", "run", "implicit-bias",
                "--no-plots", "--out_dir", out, "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"traced run: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    roots = parse_importtime(proc.stderr)
    entries = list(walk(roots))
    imports = sum(e.self_us for e in entries) / 1e6
    print(f"\nphases of `sweeplab run implicit-bias --no-plots` under -X importtime "
          f"(wall {wall:.2f} s)")
    print(f"  imports {imports:6.2f} s   ({len(entries)} modules)")
    print(f"  the rest {wall - imports:5.2f} s   (interpreter, config, baselines, training, "
          f"metrics, files)")

    packages: dict[str, float] = defaultdict(float)
    first: dict[str, Entry] = {}
    for entry in entries:
        package = entry.name.split(".")[0]
        packages[package] += entry.self_us / 1e3
        parent = entry.parent
        if package not in first and (parent is None or parent.name.split(".")[0] != package):
            first[package] = entry
    print(f"\n  {'package':<16} {'own ms':>8}  brought in by")
    for package, ms in sorted(packages.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {package:<16} {ms:8.0f}  {brought_in_by(first[package])}")

    print(f"\n  {'top importers (imports made by code)':<44} {'cumulative ms':>13}")
    for root in sorted(roots, key=lambda e: -e.cum_us)[:top]:
        print(f"  {root.name:<44} {root.cum_us / 1e3:13.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=12, help="rows of the phase table")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeat):
            for i, command in enumerate(COMMANDS):
                command.run(Path(tmp) / f"{i}-{rep}")
    by_name = {c.name: c for c in COMMANDS}
    plain = by_name["plain PyTorch script"].median
    print(f"median wall time of {args.repeat} interleaved repetitions; python "
          f"{platform.python_version()}, {os.cpu_count()} cores, load average "
          f"{load:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"  {'command':<22} {'wall s':>7}  {'figure':>8}  {'target':>7}  ")
    rows = [("import torch", None, None), ("plain PyTorch script", None, None),
            ("run --no-plots", plain, 1.5), ("run with figures", plain, 3.0),
            ("sweeplab --help", None, 0.3), ("bad value refused", None, 1.0)]
    for name, base, target in rows:
        wall = by_name[name].median
        if target is None:
            print(f"  {name:<22} {wall:7.2f}")
            continue
        figure, unit = (wall / base, "x") if base else (wall, " s")
        verdict = "ok" if figure <= target else "MISSED"
        print(f"  {name:<22} {wall:7.2f}  {figure:7.2f}{unit}  {target:6.1f}{unit}  {verdict}")
    phase_table(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
