"""New run directories, their names, and seeding a run's generators.

The files inside a run directory and their atomic writes belong to
:mod:`sweeplab.core.rundir`; the helpers re-exported here (``save_json``, ``save_yaml``,
``load_json``, ...) are the same functions, the public API's names for them.
"""

from __future__ import annotations

import random
import re
import sys
from datetime import datetime
from pathlib import Path

import numpy as np

from sweeplab.core.rundir import (
    RUN_SUBDIRS,
    atomic_write_bytes,
    atomic_write_text,
    load_json,
    load_yaml,
    save_json,
    save_yaml,
    to_jsonable,
)

__all__ = [
    "RUN_SUBDIRS",
    "atomic_write_bytes",
    "atomic_write_text",
    "load_json",
    "load_yaml",
    "make_experiment_dir",
    "safe_name",
    "save_json",
    "save_yaml",
    "set_seeds",
    "to_jsonable",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


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
