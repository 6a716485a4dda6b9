"""The trackers' flags, shared by ``sweeplab run`` and ``sweeplab grid``.

Flags given on the command line override a grid spec's ``tracking:`` section key by key.
Every tracker is off unless asked for; the local files are always written.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeplab.cli.console import err_console
from sweeplab.core.spec_model import TRACKING_KEYS
from sweeplab.track.config import TrackingConfig, prepare_tracking

TRACKING_FLAGS = [f"--{key}" for key in TRACKING_KEYS]


def add_tracking_flags(parser: argparse.ArgumentParser) -> list[str]:
    """Add the tracker flags (both ``--wandb-project`` and ``--wandb_project`` spellings)."""
    group = parser.add_argument_group("trackers (optional; the local files are always written)")
    group.add_argument("--wandb-project", "--wandb_project", dest="wandb_project",
                       metavar="P", help="log to wandb project P")
    group.add_argument("--wandb-entity", "--wandb_entity", dest="wandb_entity",
                       help="wandb entity (team or user)")
    group.add_argument("--wandb-mode", "--wandb_mode", dest="wandb_mode",
                       help="online | offline | disabled (default: offline when wandb's "
                            "server cannot be reached, or $WANDB_MODE)")
    group.add_argument("--wandb-dir", "--wandb_dir", dest="wandb_dir",
                       help="where wandb writes its files (default: <out_dir>/wandb)")
    group.add_argument("--mlflow-uri", "--mlflow_uri", dest="mlflow_uri", nargs="?",
                       const="default", metavar="URI",
                       help="log to MLflow at URI (alone: sqlite:///<out_dir>/mlflow.db)")
    group.add_argument("--mlflow-experiment", "--mlflow_experiment", dest="mlflow_experiment",
                       help="MLflow experiment name (default: the grid's or study's name)")
    return TRACKING_FLAGS + [f.replace("_", "-") for f in TRACKING_FLAGS]


def tracking_from(
    ns: argparse.Namespace,
    spec_tracking: Mapping[str, Any] | None,
    runs_dir: Path,
    experiment: str,
    group: str | None,
) -> TrackingConfig | None:
    """The resolved trackers of a run or grid (``None`` when none is on).

    Prepared once here, before any run starts: defaults resolved, the MLflow experiment
    created; a tracker that cannot start is switched off with a warning.
    """
    values = dict(spec_tracking or {})
    for key in TRACKING_KEYS:
        if getattr(ns, key, None) is not None:
            values[key] = getattr(ns, key)
    tracking = TrackingConfig(**values, group=group)
    if not tracking.enabled:
        return None
    resolved = prepare_tracking(tracking, runs_dir, experiment, warn=warn)
    return resolved if resolved.enabled else None


def warn(message: str) -> None:
    """A tracker's warning, on stderr."""
    err_console.print(f"[yellow]warning[/yellow]: {message}", highlight=False)
