"""Checkpoints: a run's whole training state in one file that always loads.

A checkpoint is ``<run_dir>/checkpoints/last.pt``, a :func:`torch.save` of a plain dict::

    format        CHECKPOINT_FORMAT (bumped when the layout changes)
    config_hash   the run's identity; a checkpoint of another config is never resumed
    epoch         the study's loop position: the state is *after* ``epoch`` epochs
    reason        "interval" | "signal" | "final"
    saved         UTC time
    metrics       {"offset": bytes of metrics.jsonl, "rows": lines} covered by the state
    warnings      the run's warnings so far (``RunContext.warn``)
    rng           torch, NumPy and Python global generator states
    state         the study's own state (model, optimizer, generators, ...)

It is written atomically (bytes to a temporary file, fsync, ``os.replace``): a crash
mid-write leaves the previous checkpoint intact. Only tensors, numbers, strings, lists,
tuples and dicts go in, so it loads with ``torch.load(weights_only=True)``: loading a
checkpoint never runs code.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.core.rundir import save_torch
from sweeplab.errors import SweeplabError

CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
CHECKPOINT_FORMAT = 1


class CheckpointError(SweeplabError):
    """A checkpoint that cannot be read (truncated, corrupt, foreign or of another run)."""


def checkpoint_path(run_dir: str | Path) -> Path:
    """Where a run keeps its checkpoint: ``<run_dir>/checkpoints/last.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def checkpoint_files(run_dir: str | Path) -> list[Path]:
    """Every ``*.pt`` file under ``<run_dir>/checkpoints/`` (sorted)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (never a half-written file)."""
    return save_torch(checkpoint, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only``); :class:`CheckpointError` if it cannot."""
    import torch

    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {reason}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"checkpoint {path} is not a sweeplab checkpoint of format {CHECKPOINT_FORMAT}"
        )
    return checkpoint


def make_checkpoint(
    *,
    config_hash: str,
    epoch: int,
    reason: str,
    metrics: dict[str, int],
    warnings: list[str],
    state: dict[str, Any],
) -> dict[str, Any]:
    """Assemble a checkpoint dict (global RNG states captured now)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config_hash": config_hash,
        "epoch": int(epoch),
        "reason": reason,
        "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "metrics": dict(metrics),
        "warnings": list(warnings),
        "rng": capture_rng(),
        "state": state,
    }


def capture_rng() -> dict[str, Any]:
    """The global generators' states of torch, NumPy and Python, as loadable data."""
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }


def restore_rng(rng: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng` captured."""
    import torch

    torch.set_rng_state(rng["torch"])
    state = rng["numpy"]
    np.random.set_state((
        state["name"], state["keys"].numpy().astype(np.uint32), state["pos"],
        state["has_gauss"], state["cached"],
    ))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
