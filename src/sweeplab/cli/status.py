"""``sweeplab status DIR``: where a grid stands.

Counts by state, an ETA, the slowest runs, and every failed run with the last lines of
its error. A run whose status says ``running`` but whose process is gone (the grid was
killed) is shown as ``stale``: a resume re-runs it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.table import Table

from sweeplab.cli.console import console
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.core.rundir import RunStatus, read_status
from sweeplab.errors import ConfigError
from sweeplab.execute.sweep import load_grid_info


def tail_error(run_dir: Path, lines: int = 6) -> list[str]:
    """The traceback's header and its last ``lines`` lines (else the log's last lines)."""
    log = run_dir / "logs" / "run.log"
    try:
        text = log.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return []
    starts = [i for i, line in enumerate(text) if line.startswith("Traceback (most recent")]
    if not starts:
        return text[-lines:]
    block = text[starts[-1]:]
    return block[:1] + (["..."] if len(block) > lines + 1 else []) + block[1:][-lines:]


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="sweeplab status", description=__doc__.splitlines()[0])
    parser.add_argument("grid_dir", help="a grid directory (runs_out/<timestamp>_<tag>)")
    parser.add_argument("--slowest", type=int, default=5, help="how many slowest runs to list")
    parser.add_argument("--lines", type=int, default=6, help="lines of each failed run's log")
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ["--slowest", "--lines"], "sweeplab status")
    grid_dir = Path(ns.grid_dir)
    if not grid_dir.is_dir():
        raise ConfigError("grid_dir", str(grid_dir), "no such directory")
    info = load_grid_info(grid_dir)

    states: dict[str, list[tuple[str, RunStatus]]] = {}
    for name in info.get("runs", []):
        status = read_status(grid_dir / name)
        state = "stale" if status.stale() else status.state
        states.setdefault(state, []).append((name, status))
    total = len(info.get("runs", []))
    counts = {s: len(v) for s, v in states.items()}
    order = ["done", "failed", "running", "stale", "pending"]
    line = ", ".join(f"{counts.get(s, 0)} {s}" for s in order if counts.get(s))
    console.print(f"[bold]{grid_dir}[/bold] ({info.get('study')}): {total} runs: {line}",
                  highlight=False)

    durations = [st.get("duration_s", 0.0) for _, st in states.get("done", [])]
    left = counts.get("pending", 0) + counts.get("running", 0) + counts.get("stale", 0)
    if durations and left:
        workers = max(1, counts.get("running", 0))
        eta = sum(durations) / len(durations) * left / workers
        console.print(f"ETA ~{timedelta(seconds=int(eta))} "
                      f"(mean {sum(durations) / len(durations):.1f}s per run, {workers} running)",
                      highlight=False)
    elif not left:
        console.print("nothing left to run", highlight=False)

    if durations:
        table = Table(title="slowest runs", title_justify="left")
        table.add_column("run")
        table.add_column("seconds", justify="right")
        done = sorted(states["done"], key=lambda x: -x[1].get("duration_s", 0.0))
        for name, st in done[: ns.slowest]:
            table.add_row(name, f"{st.get('duration_s', 0.0):.2f}")
        console.print(table)

    for name, st in states.get("failed", []) + states.get("stale", []):
        console.print(f"[red]{'failed' if st.get('state') == 'failed' else 'stale'}[/red] "
                      f"{name}: {st.error or 'process gone while running'}", highlight=False)
        for text in tail_error(grid_dir / name, ns.lines):
            console.print(f"    {text}", highlight=False, markup=False)
    return 0
