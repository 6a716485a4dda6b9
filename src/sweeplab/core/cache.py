"""A content-addressed cache of small results, shared by runs, grids and processes.

Work that depends only on a run's data and a few settings (a baseline solved on the
training set, say) repeats across the runs, grids and invocations that share that data.
It is computed once, stored under a key hashed from everything it depends on (the
arrays' bytes, shapes and dtypes, the settings, the versions of the code and libraries
that compute it) and read back bit for bit afterwards.

Where: ``$SWEEPLAB_CACHE`` (a folder; ``off`` turns the cache off), else
``$XDG_CACHE_HOME/sweeplab``, else ``~/.cache/sweeplab``. Entries are ``.npz`` files
written atomically, so concurrent writers of one key leave one whole entry; an entry
that cannot be read counts as absent (and is rewritten). Deleting the folder is always
safe. A cache that cannot be written (read-only home, full disk) only costs speed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sweeplab.core.rundir import atomic_write_bytes

OFF_WORDS = ("off", "0", "false", "no", "none")
"""Values of ``$SWEEPLAB_CACHE`` that turn the cache off."""

_META = "__meta__"


def cache_root() -> Path | None:
    """The cache folder, or None when ``$SWEEPLAB_CACHE`` turns it off."""
    setting = os.environ.get("SWEEPLAB_CACHE")
    if setting is not None:
        if setting.strip().lower() in OFF_WORDS:
            return None
        return Path(setting).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sweeplab"


def content_key(*parts: Any) -> str:
    """SHA-256 of ``parts``: arrays by dtype, shape and bytes; everything else by JSON.

    Two calls give the same key exactly when every array holds the same values in the
    same dtype and shape and every other part has the same JSON form.
    """
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            digest.update(f"ndarray:{arr.dtype.str}:{arr.shape}:".encode())
            digest.update(arr.tobytes())
        else:
            digest.update(b"json:")
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def _entry(namespace: str, key: str) -> Path | None:
    root = cache_root()
    return None if root is None else root / namespace / key[:2] / f"{key}.npz"


def load(namespace: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and metadata stored under ``key``, or None (absent, unreadable, off)."""
    path = _entry(namespace, key)
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files if name != _META}
            meta = json.loads(str(npz[_META])) if _META in npz.files else {}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    return arrays, meta


def store(namespace: str, key: str, arrays: Mapping[str, np.ndarray],
          meta: Mapping[str, Any] | None = None) -> bool:
    """Store ``arrays`` and JSON-able ``meta`` under ``key``; False when it could not be
    written (cache off, read-only or full disk): the caller just computed the value."""
    path = _entry(namespace, key)
    if path is None:
        return False
    buffer = io.BytesIO()
    np.savez(buffer, **dict(arrays), **{_META: np.array(json.dumps(dict(meta or {})))})
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError:
        return False
    return True
