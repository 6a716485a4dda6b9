"""``sweeplab`` entry point: dispatch to one module per verb, turn errors into exit codes.

Exit status: 0 success, 1 a run failed, 2 bad input or an unusable environment (one
line on stderr, nothing written), 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from sweeplab.cli.console import Interrupted, console, fail
from sweeplab.errors import SweeplabError

USAGE = """usage: sweeplab VERB [...]     (sweeplab VERB --help for a verb's flags)

verbs:
  run STUDY [--flags]       one run of a study in its own directory
                            (STUDY: a name, ./mystudy.py:run or mypkg.train:run)
  grid SPEC.yaml            a grid of runs, in parallel and resumable
  status DIR                counts, ETA, slowest and failed runs of a grid
  analyze DIR [DIR ...]     tables, figures and a report across seeds
  studies [STUDY]           the registered studies and their parameters
  volume run SPEC.yaml      the minima-volume pipeline over a grid
  new study NAME            a runnable one-file study and its grid spec
  new volume-experiment N   scaffold a new minima-volume experiment config
  agent --goal TEXT         search model architectures toward a goal

monitoring and housekeeping (docs/monitoring.md):
  ls [DIR] [--where E]      query runs, e.g. --where 'potential=lp and L=2'
  logs RUN [--follow]       a run's log (RUN_DIR or GRID_DIR/RUN_NAME)
  errors DIR                every failed run under DIR with its traceback
  check DIR                 checkpoints load, finished runs complete
  clean DIR --checkpoints   free space (finished runs only; --dry-run)
"""


def _verbs() -> dict[str, Callable[[list[str]], int]]:
    from sweeplab.cli import (
        agent,
        analyze,
        check,
        clean,
        errors,
        grid,
        logs,
        ls,
        new,
        run,
        status,
        studies,
        volume,
    )

    return {"run": run.main, "grid": grid.main, "status": status.main,
            "analyze": analyze.main, "studies": studies.main, "ls": ls.main,
            "logs": logs.main, "errors": errors.main, "check": check.main,
            "clean": clean.main, "volume": volume.main, "new": new.main,
            "agent": agent.main}


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run ``sweeplab`` with ``argv`` (default: the process arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if not argv:
        sys.stderr.write(USAGE)
        return fail("give a verb, e.g. sweeplab run implicit-bias (sweeplab --help)")
    if argv[0] == "--version":
        from importlib.metadata import version

        console.print(f"sweeplab {version('sweeplab')}")
        return 0
    verbs = _verbs()
    verb = verbs.get(argv[0])
    if verb is None:
        from sweeplab.suggest import did_you_mean

        return fail(f"unknown verb {argv[0]!r}{did_you_mean(argv[0], verbs)}; "
                    f"allowed verbs: {', '.join(verbs)}")
    return run_verb(verb, argv[1:])


def run_verb(verb: Callable[[list[str]], int], argv: list[str]) -> int:
    """Run one verb with ``argv``: SIGTERM as Ctrl-C, errors as one line and an exit code."""
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return verb(argv)
    except SweeplabError as exc:  # bad input or an unusable environment: one line, exit 2
        return fail(str(exc))
    except Interrupted as exc:
        return fail(f"interrupted; {exc.hint}", code=130)
    except KeyboardInterrupt:
        return fail("interrupted", code=130)
    except OSError as exc:  # a full disk in any verb: one line, not a traceback
        from sweeplab.core.disk import disk_full_file

        path = disk_full_file(exc)
        if path is None:
            raise
        where = f" writing {path}" if path else ""
        return fail(f"disk full{where}; free space and run the command again", code=1)
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
