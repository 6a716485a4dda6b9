"""``sweeplab logs RUN [--follow] [--lines N] [--file train|run]``: a run's log, like tail -f.

By default both logs of the run are shown, merged by timestamp: ``logs/train.log`` (the
metric lines, when the run writes one) and ``logs/run.log`` (start, warnings, the
traceback of a failure); ``--file`` picks one. ``--follow`` keeps printing new lines
until the run's status.json is no longer ``running`` (or its process is gone, or Ctrl-C),
then ends by itself; its exit status is 0 when the run ended ``done``, else 1.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sweeplab.cli.console import err_console
from sweeplab.cli.flags import OneLineParser, reject_unknown
from sweeplab.core.run_logs import LOG_FILES, LogTail, merge
from sweeplab.errors import ConfigError

ALLOWED = ["--follow", "-f", "--lines", "-n", "--file"]
POLL_SECONDS = 0.25
"""How often ``--follow`` looks for new lines and for the end of the run."""


def resolve_run(text: str) -> Path:
    """The run directory ``text`` names (``RUN_DIR`` or ``GRID_DIR/RUN_NAME``).

    :class:`ConfigError` (key ``run``) when there is none, saying what there is instead.
    """
    from sweeplab.core.experiment import load_json
    from sweeplab.core.run_dirs import RUN_MARKERS
    from sweeplab.execute.sweep import GRID_FILE

    path = Path(text)
    if path.is_dir() and any((path / m).exists() for m in RUN_MARKERS):
        return path
    grid = path if (path / GRID_FILE).is_file() else path.parent
    runs: list[str] = []
    if (grid / GRID_FILE).is_file():
        try:
            runs = list(load_json(grid / GRID_FILE).get("runs", []))
        except (OSError, ValueError):
            runs = []
    if grid != path and path.name in runs:
        raise ConfigError("run", text, "this run of the grid has not started yet")
    if runs:
        shown = ", ".join(runs[:5]) + (", ..." if len(runs) > 5 else "")
        raise ConfigError("run", text, f"no such run directory; runs of grid {grid}: {shown}")
    what = "not a run directory (no config.yaml or status.json)" if path.is_dir() \
        else "no such run directory"
    raise ConfigError("run", text, f"{what}; give RUN_DIR or GRID_DIR/RUN_NAME")


def _emit(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog="sweeplab logs", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory, or GRID_DIR/RUN_NAME")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new lines until the run ends")
    parser.add_argument("--lines", "-n", type=int, default=20,
                        help="how many of the last lines to show first (default 20)")
    parser.add_argument("--file", choices=sorted(LOG_FILES), default=None,
                        help="only this log (default: train.log and run.log, merged)")
    ns, extras = parser.parse_known_args(argv)
    reject_unknown(extras, ALLOWED, "sweeplab logs")
    if ns.lines < 0:
        raise ConfigError("lines", ns.lines, "an integer >= 0")
    run_dir = resolve_run(ns.run)
    which = [ns.file] if ns.file else list(LOG_FILES)
    present = [w for w in which if (run_dir / LOG_FILES[w]).is_file()]
    if not ns.follow and not present:
        if ns.file:
            have = [w for w in LOG_FILES if (run_dir / LOG_FILES[w]).is_file()]
            raise ConfigError("file", ns.file, f"this run has no {LOG_FILES[ns.file]}; "
                                               f"it has: {', '.join(have) or 'no log yet'}")
        err_console.print(f"no log yet in {run_dir / 'logs'}", highlight=False, markup=False,
                          soft_wrap=True)
        return 0
    tails = [LogTail(run_dir / LOG_FILES[w]) for w in which]
    first = [t.start(ns.lines) + ([] if ns.follow else t.read(final=True)) for t in tails]
    _emit(merge(first)[-ns.lines:] if ns.lines else [])
    if not ns.follow:
        return 0
    try:
        return follow(run_dir, tails, POLL_SECONDS)
    except KeyboardInterrupt:  # Ctrl-C ends following; it is not an error
        return 0


def follow(run_dir: Path, tails: list[LogTail], poll: float) -> int:
    """Print new lines until the run is no longer running; 0 if it ended ``done``."""
    from sweeplab.core.rundir import read_status

    while True:
        status = read_status(run_dir)
        state = status.state if status.exists else None
        gone = not run_dir.is_dir()
        stale = status.stale()
        ended = gone or stale or (state is not None and state != "running")
        if ended:
            time.sleep(poll)  # the run's last lines land just after its status flips
        _emit(merge([t.read(final=ended) for t in tails]))
        if ended:
            break
        time.sleep(poll)
    if gone:
        why = "the run directory was removed"
    elif stale:
        why = f"process {status.pid} is gone (stale run)"
    else:
        why = f"run {state}" + (f": {status.error}" if status.error else "")
    err_console.print(f"[{why}]", highlight=False, markup=False, soft_wrap=True)
    return 0 if state == "done" and not stale else 1
