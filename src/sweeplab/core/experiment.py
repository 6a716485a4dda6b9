"""Run directories and the small file utilities every run uses.

Files are the source of truth, so every whole-file write here is atomic: the content
goes to a temporary file in the same folder, is flushed to disk, and replaces the target
with :func:`os.replace`. A crash leaves either the old file or the new one, never half.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sweeplab.core.disk import naming

RUN_SUBDIRS = ("figs", "tables", "logs")
"""Sub-folders every run directory has."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


def _file_mode() -> int:
    """Mode of a new file under this process's umask (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder + os.replace).

    A full disk raises the ``OSError`` naming ``path`` (not the temporary file).
    """
    path = Path(path)
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and sets into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def save_json(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` as indented JSON, atomically; numpy values become plain numbers.

    Non-finite floats are written as ``null`` (NaN) or ``"inf"``/``"-inf"`` so the file
    stays valid JSON that any reader accepts.
    """
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def save_yaml(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` as block-style YAML, atomically, keeping key order."""
    text = yaml.safe_dump(to_jsonable(obj), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


def load_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`save_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with the safe loader."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def set_seeds(seed: int, import_torch: bool = True) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    scikit-learn has no global seed of its own: its estimators take the run's seed as
    ``random_state`` (the studies pass it), and fall back to NumPy's global generator,
    which this seeds too. ``import_torch`` False seeds torch only when something has
    imported it already (importing it costs seconds a study that never uses it should
    not pay). Returns ``seed`` for chaining.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if not import_torch and "torch" not in sys.modules:
        return seed
    try:
        import torch
    except ImportError:  # torch is optional for studies that do not use it
        return seed
    torch.manual_seed(seed)
    return seed


def safe_name(text: str) -> str:
    """A file-system-safe version of ``text`` (keeps ``=``, ``,`` and ``.``)."""
    cleaned = _UNSAFE.sub("_", text).strip("_")
    return cleaned or "run"


def make_experiment_dir(base: str | Path = "runs_out", tag: str | None = None) -> Path:
    """Create ``base/<YYYYmmdd-HHMMSS>[_tag]/`` with ``figs/``, ``tables/`` and ``logs/``.

    The folder is created with an exclusive ``mkdir``, so two runs started in the same
    second never share a directory: the second gets a ``-1`` suffix (then ``-2``, ...).
    """
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = f"{stamp}_{safe_name(tag)}" if tag else stamp
    for attempt in range(10_000):
        path = base / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        for sub in RUN_SUBDIRS:
            (path / sub).mkdir()
        return path
    raise FileExistsError(f"could not create a unique run directory under {base}")
