"""Helpers of the monitoring tests: find a grid, edit a status, write a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import yaml


def grid_of(root: Path, tag: str) -> Path:
    """The grid directory ``<timestamp>_<tag>`` under ``root``."""
    (found,) = [p for p in root.iterdir() if p.name.endswith(f"_{tag}") and
                (p / "grid.json").is_file()]
    return found


def update_status(run_dir: Path, **changes) -> dict:
    """Rewrite a run's status.json with ``changes`` applied; returns the new status."""
    status = json.loads((run_dir / "status.json").read_text())
    status.update(changes)
    (run_dir / "status.json").write_text(json.dumps(status))
    return status


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_checkpoint(run_dir: Path, config_hash: str | None = None,
                     offset: int | None = None) -> Path:
    """A real checkpoint (save_checkpoint) of ``run_dir``, consistent unless told otherwise."""
    import torch

    from sweeplab.core.checkpoint import checkpoint_path, make_checkpoint, save_checkpoint

    header = yaml.safe_load((run_dir / "config.yaml").read_text())
    jsonl = run_dir / "metrics.jsonl"
    size = jsonl.stat().st_size if jsonl.exists() else 0
    checkpoint = make_checkpoint(
        config_hash=config_hash or header["config_hash"], epoch=5, reason="interval",
        metrics={"offset": size if offset is None else offset, "rows": 6}, warnings=[],
        state={"w": torch.arange(1000, dtype=torch.float64)},
    )
    return save_checkpoint(checkpoint_path(run_dir), checkpoint)
