"""Finding run directories under a folder: the one walk every reader of runs shares.

Kept free of pandas and pyarrow so the monitoring verbs (``sweeplab ls``, ``check``,
``errors``, ``clean``) start fast.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN_MARKERS = ("config.yaml", "status.json")
"""A directory holding either file is a run directory."""


def find_run_dirs(path: str | Path) -> list[Path]:
    """The run directories at or under ``path``, sorted.

    ``path`` may be a run directory itself, a grid directory or any folder of runs: a
    directory holding ``config.yaml`` or ``status.json`` is a run and its own subfolders
    (``figs/``, ``logs/``, ...) are not searched; any other directory is searched
    recursively. Symlinked folders are followed once.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: no such directory")
    found: list[Path] = []
    seen: set[str] = set()
    stack = [root]
    while stack:
        current = stack.pop()
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        names = {e.name for e in entries}
        if any(marker in names for marker in RUN_MARKERS):
            found.append(current)
            continue
        stack.extend(Path(e.path) for e in entries if _is_dir(e))
    return sorted(found)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
