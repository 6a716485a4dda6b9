"""Benchmark: every figure of issue 17's Goal against its target, in one invocation.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 3] [--slow-repeat 1] [--top 12]

Times each command below (its median over ``--repeat`` repetitions; Hydra's multirun,
the slowest, over ``--slow-repeat``) and prints each figure of the Goal against its
target: a ratio to ``benchmarks/plain_implicit_bias.py`` (one plain-script run: the
implicit-bias study's default training written by hand, 1000 epochs, a metrics CSV and a
final JSON) or a time.

- ``sweeplab run implicit-bias --no-plots`` (default config): <= 1.5x the plain script;
  the same run with its figures: <= 3x;
- ``sweeplab grid runs/configs/synthetic_potentials.yaml`` (18 runs x 1000 epochs, the
  executor sweeplab chooses): <= 2x the plain script, and >= 5x faster than Hydra's
  multirun with the joblib launcher on the same work (``bench_grid.hydra_multirun_argv``;
  ``pip install -e '.[bench]'`` installs Hydra, else that row says skipped);
- ``sweeplab grid runs/configs/quick_debug.yaml`` (4 runs) and ``sweeplab analyze`` on
  the grid it wrote: each < 2x the plain script;
- ``sweeplab --help`` < 0.3 s and a refused bad value (``--lr abc``, exit 2) < 1 s;
- ``python -c "import torch"`` for reference: the floor of any torch script.

Every sweeplab command runs with an empty result cache (``SWEEPLAB_CACHE``, a fresh
folder each time: what a first run on new data pays, the figures of the Goal), and the
runs and grids again with a cache that holds their data's baselines ("data seen
before": a re-run, another learning rate or depth on the same data, a resumed grid).

Repetitions are interleaved (each round runs every command once), so that the load of a
shared machine falls on every command alike; the load average is printed. Then a phase
table of one run without figures under ``python -X importtime``: its wall time split into
imports and the rest (baselines, training, metrics, files), the top-level packages by
their own import time with the import that brought each in, and the top importers (the
imports made by code, with everything each pulled in).
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

import yaml

sys.path.insert(0, str(Path(__file__).parent))  # bench_grid, a sibling script
from bench_grid import HYDRA_MISSING, hydra_multirun_argv  # noqa: E402

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[1]
PLAIN = str(Path(__file__).with_name("plain_implicit_bias.py"))
SWEEPLAB = [PYTHON, "-m", "sweeplab"]
SEEDS_GRID = REPO / "runs" / "configs" / "synthetic_potentials.yaml"
QUICK_GRID = REPO / "runs" / "configs" / "quick_debug.yaml"


@dataclass
class Command:
    """One timed command and its expected exit status.

    In ``argv``, ``{out}`` is a fresh folder of this repetition (also its working
    directory when ``in_out``) and ``{quick_grid}`` the grid directory the quick_debug
    grid wrote in the same round. ``slow`` commands run ``--slow-repeat`` times only.
    """

    name: str
    argv: list[str]
    code: int = 0
    in_out: bool = False
    slow: bool = False
    warm: bool = False
    """Run with the shared, warmed result cache (else an empty one of its own)."""
    times: list[float] = field(default_factory=list)

    def run(self, out: Path, fields: dict[str, Path]) -> subprocess.CompletedProcess:
        out.mkdir(parents=True)
        argv = list(self.argv)
        for key, value in {"out": out, **fields}.items():
            argv = [a.replace("{" + key + "}", str(value)) for a in argv]
        cache = fields["warm_cache"] if self.warm else out / ".cache"
        env = {**os.environ, "SWEEPLAB_CACHE": str(cache)}
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                              cwd=out if self.in_out else None)
        self.times.append(time.perf_counter() - t0)
        if proc.returncode != self.code:
            raise SystemExit(f"{self.name}: exit {proc.returncode}, expected {self.code}\n"
                             f"{proc.stderr[-2000:]}")
        return proc

    @property
    def median(self) -> float:
        return statistics.median(self.times)


WARMED = [
    Command("run --no-plots", [*SWEEPLAB, "run", "implicit-bias", "--no-plots",
                               "--out_dir", "{out}", "--quiet"]),
    Command("grid, 18 runs", [*SWEEPLAB, "grid", str(SEEDS_GRID), "--out_dir", "{out}"]),
    Command("grid quick_debug", [*SWEEPLAB, "grid", str(QUICK_GRID), "--out_dir", "{out}"]),
]
"""Commands timed again on data seen before; each runs once, untimed, to fill the cache."""


def commands(cores: int) -> list[Command]:
    """The timed commands, in the order each round runs them; Hydra's where installed."""
    spec = yaml.safe_load(SEEDS_GRID.read_text())
    hydra = hydra_multirun_argv(spec, Path("{out}"), cores)
    return [
        Command("import torch", [PYTHON, "-c", "import torch"]),
        Command("plain PyTorch script", [PYTHON, PLAIN, "--out", "{out}"]),
        Command("run --no-plots", [*SWEEPLAB, "run", "implicit-bias", "--no-plots",
                                   "--out_dir", "{out}", "--quiet"]),
        Command("run with figures", [*SWEEPLAB, "run", "implicit-bias", "--out_dir", "{out}",
                                     "--quiet"]),
        Command("grid, 18 runs", [*SWEEPLAB, "grid", str(SEEDS_GRID), "--out_dir", "{out}"]),
        *([Command("Hydra multirun, 18 runs", hydra, in_out=True, slow=True)] if hydra else []),
        Command("grid quick_debug", [*SWEEPLAB, "grid", str(QUICK_GRID), "--out_dir", "{out}"]),
        Command("analyze quick_debug", [*SWEEPLAB, "analyze", "{quick_grid}", "--output_dir",
                                        "{out}"]),
        *[Command(f"{c.name}, seen", c.argv, warm=True) for c in WARMED],
        Command("sweeplab --help", [*SWEEPLAB, "--help"]),
        Command("bad value refused", [*SWEEPLAB, "run", "implicit-bias", "--lr", "abc"], code=2),
    ]


@dataclass
class Figure:
    """One figure of the Goal: ``measured`` over ``base`` (or seconds), against a target.

    ``faster`` figures are ``base / measured`` and must reach the target (Hydra's time
    over sweeplab's); the others must stay within it (``strict``: below it, the issue's
    "under").
    """

    label: str
    measured: str
    base: str | None
    target: float
    faster: bool = False
    strict: bool = False


FIGURES = [
    Figure("run --no-plots / plain script", "run --no-plots", "plain PyTorch script", 1.5),
    Figure("run with figures / plain script", "run with figures", "plain PyTorch script", 3.0),
    Figure("grid 18 runs / plain script", "grid, 18 runs", "plain PyTorch script", 2.0),
    Figure("Hydra multirun / grid 18 runs", "grid, 18 runs", "Hydra multirun, 18 runs", 5.0,
           faster=True),
    Figure("grid quick_debug / plain script", "grid quick_debug", "plain PyTorch script", 2.0,
           strict=True),
    Figure("analyze quick_debug / plain script", "analyze quick_debug", "plain PyTorch script",
           2.0, strict=True),
    Figure("  the same, data seen before", "run --no-plots, seen", "plain PyTorch script", 1.5),
    Figure("  grid 18 runs, data seen before", "grid, 18 runs, seen", "plain PyTorch script",
           2.0),
    Figure("  Hydra / grid 18 runs, seen", "grid, 18 runs, seen", "Hydra multirun, 18 runs",
           5.0, faster=True),
    Figure("  grid quick_debug, data seen before", "grid quick_debug, seen",
           "plain PyTorch script", 2.0, strict=True),
    Figure("sweeplab --help", "sweeplab --help", None, 0.3, strict=True),
    Figure("bad value refused", "bad value refused", None, 1.0, strict=True),
]


def print_figures(by_name: dict[str, Command]) -> None:
    """The table of the Goal: figure, measured, target, met."""
    print(f"\n  {'figure':<38} {'measured':>9}  {'target':>8}  met")
    for fig in FIGURES:
        if fig.measured not in by_name or (fig.base and fig.base not in by_name):
            print(f"  {fig.label:<38} {'skipped':>9}  ({HYDRA_MISSING})")
            continue
        wall = by_name[fig.measured].median
        if fig.base is None:
            value, unit = wall, " s"
        elif fig.faster:
            value, unit = by_name[fig.base].median / wall, "x"
        else:
            value, unit = wall / by_name[fig.base].median, "x"
        if fig.faster:
            sign, met = ">=", value >= fig.target
        elif fig.strict:
            sign, met = "<", value < fig.target
        else:
            sign, met = "<=", value <= fig.target
        target = f"{sign} {fig.target:.1f}{unit}"
        print(f"  {fig.label:<38} {value:8.2f}{unit:<2} {target:>8}  {'yes' if met else 'no'}")


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
        env = {**os.environ, "SWEEPLAB_CACHE": str(Path(out) / ".cache")}  # empty cache
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"traced run: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    roots = parse_importtime(proc.stderr)
    entries = list(walk(roots))
    imports = sum(e.self_us for e in entries) / 1e6
    print(f"\nphases of `sweeplab run implicit-bias --no-plots` under -X importtime, empty "
          f"cache (wall {wall:.2f} s)")
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
    parser.add_argument("--slow-repeat", type=int, default=1,
                        help="repetitions of Hydra's multirun (default: 1)")
    parser.add_argument("--top", type=int, default=12, help="rows of the phase table")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    timed = commands(cores)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = Path(tmp) / "warm-cache"
        for i, command in enumerate(WARMED):
            command.run(Path(tmp) / "warm-up" / str(i), {"warm_cache": warm_cache})
        for rep in range(args.repeat):
            round_dir = Path(tmp) / str(rep)
            fields = {"quick_grid": round_dir / "grid-quick", "warm_cache": warm_cache}
            for i, command in enumerate(timed):
                if command.slow and rep >= args.slow_repeat:
                    continue
                out = round_dir / ("grid-quick" if command.name == "grid quick_debug"
                                   else str(i))
                command.run(out, fields)
                if command.name == "grid quick_debug":
                    (fields["quick_grid"],) = [d for d in out.iterdir()
                                                if d.is_dir() and not d.name.startswith(".")]
    by_name = {c.name: c for c in timed}
    print(f"wall time: median of {args.repeat} interleaved repetitions (Hydra's multirun: "
          f"{min(args.slow_repeat, args.repeat)}); python {platform.python_version()}, "
          f"{cores} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} before, "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} after")
    print(f"  {'command (empty cache; seen: baselines cached)':<46} {'wall s':>7}  "
          f"{'range':>13}")
    for command in timed:
        spread = f"{min(command.times):.2f}-{max(command.times):.2f}"
        print(f"  {command.name:<46} {command.median:7.2f}  {spread:>13}")
    print_figures(by_name)
    phase_table(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
