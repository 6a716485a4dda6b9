"""``sweeplab errors DIR [--lines N]``: every failed run under DIR, with its traceback.

DIR is a grid directory, a runs root or any folder of runs (searched recursively). Each
failed run is listed with its error line and the last N lines of its traceback; an
interrupted run (Ctrl-C, SIGTERM) and a stale one (its process gone while ``running``)
are marked as such, with how to resume. Exit status 0 when no run failed, else 1.
"""

from __future__ import annotations

from pathlib import Path

from sweeplab.cli.console import console, say
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.errors import ConfigError

ALLOWED = ["--lines", "-n"]


def existing_dir(text: str, key: str = "dir") -> Path:
    """``text`` as a directory; :class:`ConfigError` naming ``key`` if there is none."""
    path = Path(text)
    if not path.is_dir():
        raise ConfigError(key, text, "no such directory (give a runs root, a grid directory "
                                     "or a run directory)")
    return path


def resume_hint(run_dir: Path) -> str:
    """How to resume an unfinished run: its grid's resume command, or ``run --resume``."""
    from sweeplab.core.checkpoint import checkpoint_path
    from sweeplab.execute.sweep import GRID_FILE

    if (run_dir.parent / GRID_FILE).is_file():
        return f"resume it: sweeplab grid --resume {run_dir.parent}"
    if checkpoint_path(run_dir).is_file():
        return f"resume it from its checkpoint: sweeplab run --resume {run_dir}"
    return f"run it again: sweeplab run --resume {run_dir}"


def main(argv: list[str]) -> int:
    from sweeplab.cli.status import tail_error
    from sweeplab.core.run_dirs import find_run_dirs
    from sweeplab.core.rundir import read_status

    parser = OneLineParser(prog="sweeplab errors", description=__doc__.splitlines()[0])
    parser.add_argument("dir", help="a grid directory, a runs root or a run directory")
    parser.add_argument("--lines", "-n", type=int, default=6,
                        help="lines of each traceback to show (default 6; 0: none)")
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ALLOWED, "sweeplab errors")
    if ns.lines < 0:
        raise ConfigError("lines", ns.lines, "an integer >= 0")
    root = existing_dir(ns.dir)
    runs = find_run_dirs(root)
    counts = {"failed": 0, "interrupted": 0, "stale": 0}
    for run_dir in runs:
        status = read_status(run_dir)
        if status.state == "failed":
            kind = status.shown
            error = status.error or "(no error recorded)"
        elif status.stale():
            kind = "stale"
            error = f"process {status.pid} gone while running (killed?)"
        else:
            continue
        counts[kind] += 1
        console.print(f"[red]{kind}[/red] [bold]{_escape(run_dir)}[/bold]: {_escape(error)}",
                      highlight=False, soft_wrap=True)
        if kind != "failed":
            say(f"    {kind}: {resume_hint(run_dir)}")
        for line in (tail_error(run_dir, ns.lines) if ns.lines else []):
            say(f"    {line}")
    total = sum(counts.values())
    if not total:
        say(f"no failed runs ({len(runs)} runs under {root})")
        return 0
    parts = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    say(f"{parts} of {len(runs)} runs under {root}")
    return 1


def _escape(value: object) -> str:
    from rich.markup import escape

    return escape(str(value))
