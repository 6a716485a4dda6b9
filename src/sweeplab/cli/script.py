"""``@sweeplab.main(MyConfig)``: a plain script becomes a sweeplab run, a grid, a help page.

::

    @sweeplab.main(TrainConfig)
    def main(cfg: TrainConfig, ctx: sweeplab.RunContext):   # or main(cfg), with sweeplab.log
        ...

    if __name__ == "__main__":
        main()

- ``python train.py --lr 0.1`` is ``sweeplab run`` of this function: a run directory under
  ``runs_out/`` with config.yaml, metrics, final.json (``--out_dir``, ``--tag`` as there);
- ``python train.py --grid spec.yaml [grid flags]`` is ``sweeplab grid``, the spec needing
  no ``study:`` (this function is its study; the workers import this file by its path);
- ``python train.py --resume RUN_DIR`` continues a run; ``--help`` lists the config's flags.

Called with no arguments it reads ``sys.argv`` and exits with the command's status (0
done, 1 a run failed, 2 bad input); called with a list it returns that status.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweeplab.errors import ConfigError

GRID_FLAG = "--grid"


class ScriptMain:
    """A function decorated by :func:`main`: call it to run the script's command line."""

    def __init__(self, fn: Callable[..., Any], config: type):
        self.fn = fn
        self.config = config
        functools.update_wrapper(self, fn)

    @property
    def __sweeplab_main__(self) -> ScriptMain:
        """What :mod:`sweeplab.core.study_ref` looks for to find the function and config."""
        return self

    def __call__(self, argv: list[str] | None = None) -> int:
        code = run_script(self, list(sys.argv[1:] if argv is None else argv))
        if argv is None:
            sys.exit(code)
        return code

    def reference(self) -> str:
        """``/abs/path/train.py:main``: how every process (a grid's workers) finds it."""
        module = sys.modules.get(self.fn.__module__)
        path = getattr(module, "__file__", None)
        if not path:
            raise ConfigError("study", self.fn.__name__, "@sweeplab.main needs a function "
                              "defined in a script file (python train.py)")
        name = next((k for k, v in vars(module).items() if v is self), self.fn.__name__)
        return f"{Path(path).resolve()}:{name}"


def main(config: type) -> Callable[[Callable[..., Any]], ScriptMain]:
    """Decorate a script's main function (``fn(cfg, ctx)`` or ``fn(cfg)``) with its config."""
    from sweeplab.core.config import StudyConfig

    if not (isinstance(config, type) and issubclass(config, StudyConfig)):
        raise TypeError("sweeplab.main(config): config must be a subclass of "
                        "sweeplab.StudyConfig")

    def deco(fn: Callable[..., Any]) -> ScriptMain:
        return ScriptMain(fn, config)

    return deco


def run_script(script: ScriptMain, argv: list[str]) -> int:
    """The script's command line: a run, a grid (``--grid SPEC``), a resume or the help."""
    from sweeplab.cli import grid, run
    from sweeplab.cli.main import run_verb

    prog = f"python {Path(sys.argv[0]).name if sys.argv and sys.argv[0] else 'script.py'}"
    spec, rest = _grid_arg(argv)
    if spec is not None:
        return run_verb(lambda a: grid.main(a, prog=f"{prog} {GRID_FLAG}",
                                            default_study=script.reference()), [spec, *rest])
    if argv and argv[0] in ("-h", "--help"):
        return run_verb(lambda a: _help(script, prog), argv)
    if argv and argv[0].startswith("--resume"):
        return run_verb(lambda a: run.main(a, prog=prog), argv)
    return run_verb(lambda a: run.main([script.reference(), *a], prog=prog), argv)


def _grid_arg(argv: list[str]) -> tuple[str | None, list[str]]:
    """``(SPEC, the other arguments)`` of ``--grid SPEC`` or ``--grid=SPEC``; else
    ``(None, argv)``."""
    for i, arg in enumerate(argv):
        if arg == GRID_FLAG:
            if i + 1 >= len(argv):
                raise ConfigError("grid", None, "give the grid spec: --grid spec.yaml")
            return argv[i + 1], argv[:i] + argv[i + 2:]
        if arg.startswith(GRID_FLAG + "="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1:]
    return None, argv


def _help(script: ScriptMain, prog: str) -> int:
    from sweeplab.cli.console import say
    from sweeplab.cli.run import build_parser
    from sweeplab.core.registry import resolve_study

    parser, _ = build_parser(resolve_study(script.reference()), prog)
    say(parser.format_help().rstrip())
    say(f"\ngrids: {prog} {GRID_FLAG} spec.yaml [--jobs N] [--executor local|slurm] ... "
        "(the flags of sweeplab grid; the spec needs no study:)")
    return 0
