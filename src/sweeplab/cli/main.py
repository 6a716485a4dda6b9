"""``sweeplab`` entry point: dispatch to one module per verb, turn errors into exit codes.

The framework's verbs are listed here; a plugin adds verbs of its own (a study through
its ``commands``, anything else through the ``sweeplab.commands`` entry points), found
only when a verb is not the framework's, so ``sweeplab --help`` imports no plugin.

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
                            or: run --command "python train.py" --lr 0.1
  grid SPEC.yaml            a grid of runs, in parallel and resumable
  status DIR                counts, ETA, slowest and failed runs of a grid
  analyze DIR [DIR ...]     tables, figures and a report across seeds
  studies [STUDY]           the installed studies: parameters, verbs, templates
  new study NAME            a runnable one-file study and its grid spec
  new KIND NAME             a template a study offers (sweeplab new --help)

monitoring and housekeeping (docs/monitoring.md):
  ls [DIR] [--where E]      query runs, e.g. --where 'potential=lp and L=2'
  logs RUN [--follow]       a run's log (RUN_DIR or GRID_DIR/RUN_NAME)
  errors DIR                every failed run under DIR with its traceback
  check DIR                 checkpoints load, finished runs complete
  clean DIR --checkpoints   free space (finished runs only; --dry-run)
"""


VERBS = ("run", "grid", "status", "analyze", "studies", "ls", "logs", "errors", "check",
         "clean", "new")
"""The framework's verbs, each the ``main`` of the ``sweeplab.cli`` module of its name."""


def _usage() -> str:
    """The usage text, with the verbs of installed plugins (names from their metadata)."""
    from sweeplab.core.plugins import command_names

    plugins = command_names()
    more = f"  {', '.join(plugins):<24}  verbs of installed plugins\n" if plugins else ""
    return (USAGE + "\nplugins (sweeplab VERB --help):\n" + more
            + f"  {'(verbs of studies)':<24}  listed by sweeplab studies\n")


def _verb(name: str) -> Callable[[list[str]], int] | None:
    """The function behind verb ``name``: the framework's, else a plugin's, else None."""
    if name in VERBS:
        import importlib

        return importlib.import_module(f"sweeplab.cli.{name}").main
    from sweeplab.core.registry import find_command

    return find_command(name)


def all_verbs() -> list[str]:
    """Every verb there is, plugins' and studies' included (imports the studies)."""
    from sweeplab.core.registry import command_names, study_commands

    return [*VERBS, *command_names(), *study_commands()]


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run ``sweeplab`` with ``argv`` (default: the process arguments)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0
    if not argv:
        sys.stderr.write(_usage())
        return fail("give a verb, e.g. sweeplab run ./mystudy.py:run (sweeplab --help)")
    if argv[0] == "--version":
        from importlib.metadata import version

        console.print(f"sweeplab {version('sweeplab')}")
        return 0
    try:
        verb = _verb(argv[0])
    except (SweeplabError, ImportError) as exc:
        return fail(f"verb {argv[0]!r} cannot be loaded: {exc}")
    if verb is None:
        from sweeplab.suggest import did_you_mean

        verbs = all_verbs()
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
