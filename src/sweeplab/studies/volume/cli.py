"""``sweeplab volume run CONFIG`` and ``sweeplab volume stage NAME CONFIG``: the study's
own verb (its ``commands``; CLI code, so it may use ``sweeplab.cli``).

The minima-volume pipeline over a grid (``runs/configs/volume/*.yaml``), in parallel with
the grid's executors and flags (``--out_dir``, ``--executor``, ``-j``, ...). Every run of
the grid is visited each time; each stage inside a run is skipped when its cached
outputs exist and its inputs are unchanged, so re-running after an interruption, or
after changing only the loss cutoffs, redoes only what must be redone.
"""

from __future__ import annotations

import argparse

from sweeplab.cli.console import console
from sweeplab.errors import ConfigError
from sweeplab.studies.volume.config import STAGES

STUDY = "minima-volume"
USAGE = f"""usage: sweeplab volume run CONFIG [--out_dir D] [grid flags]
       sweeplab volume stage NAME CONFIG [--out_dir D] [grid flags]

  run     every stage of every run of the grid CONFIG (cached stages are skipped)
  stage   one stage (NAME: {', '.join(STAGES)}) of every run; it needs the current
          outputs of the stages before it
grid flags: see sweeplab grid --help (--executor, --jobs, --tag, --fresh, ...);
  --batch auto|off also sets how each run trains its models: as one batched
  computation where it pays (auto), or one by one (off); default: the config's batch
"""
ACTIONS = ("run", "stage")


def main(argv: list[str]) -> int:
    """Dispatch ``run`` / ``stage`` to the grid runner with the stages to run."""
    from sweeplab.cli import grid

    if not argv or argv[0] in ("-h", "--help"):
        console.print(USAGE, highlight=False, markup=False)
        return 0
    action, rest = argv[0], argv[1:]
    if action not in ACTIONS:
        raise ConfigError("action", action, "allowed values are " + ", ".join(ACTIONS))
    batch = _batch_flag(rest)
    if action == "run":
        return grid.main(rest, prog="sweeplab volume run",
                         overrides={"stages": "all", **batch}, rerun_done=True, study=STUDY)
    if not rest or rest[0].startswith("-"):
        raise ConfigError("stage", rest[0] if rest else "(none given)",
                          "name the stage first (sweeplab volume stage NAME CONFIG); allowed "
                          "values are " + ", ".join(STAGES))
    name = rest[0]
    if name not in STAGES:
        raise ConfigError("stage", name, "allowed values are " + ", ".join(STAGES))
    return grid.main(rest[1:], prog=f"sweeplab volume stage {name}",
                     overrides={"stages": name, **batch}, rerun_done=True, study=STUDY)


def _batch_flag(argv: list[str]) -> dict[str, str]:
    """``{"batch": value}`` when ``--batch`` is given (the grid flag, which the grid also
    reads and checks), so it reaches each run's config; ``{}`` keeps the config's."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--batch")
    value = parser.parse_known_args(argv)[0].batch
    return {} if value is None else {"batch": value}
