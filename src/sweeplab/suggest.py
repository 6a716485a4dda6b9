""""Did you mean ...?" for every name a user types: flags, spec keys, studies, verbs, files.

A suggestion is found by meaning first (``aliases``: other names a parameter is known by,
such as ``learning_rate`` for ``lr``, declared on the config field), then by closeness
of spelling (:func:`difflib.get_close_matches`, which catches ``depth`` for ``depths`` and
``--epoch`` for ``--epochs``). Names are compared without leading dashes and with ``-``
read as ``_``, so ``--learning-rate`` finds the alias ``learning_rate``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path


def _bare(name: str) -> str:
    return name.lstrip("-").replace("-", "_").lower()


def closest(
    name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None
) -> str | None:
    """The choice ``name`` most likely meant, or None when none is close.

    ``aliases`` maps another name of a choice (bare, e.g. ``learning_rate``) to the
    choice itself as it appears in ``choices`` (e.g. ``--lr``).
    """
    options = [str(c) for c in choices]
    bare = _bare(name)
    pool: dict[str, str] = {}
    for option in options:
        pool.setdefault(_bare(option), option)
    for alias, target in (aliases or {}).items():
        if target in options:
            pool.setdefault(_bare(alias), target)
    if bare in pool and pool[bare] != name:
        return pool[bare]
    match = difflib.get_close_matches(bare, list(pool), n=1, cutoff=0.6)
    if match:
        return pool[match[0]]
    # a prefix (``--epoch`` of ``--epochs``) or an extension (``--seeds`` of ``--seed``)
    near = [b for b in pool if len(bare) >= 2 and (b.startswith(bare) or bare.startswith(b))]
    return pool[min(near, key=lambda b: abs(len(b) - len(bare)))] if near else None


def did_you_mean(
    name: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None
) -> str:
    """`` (did you mean X?)`` for the closest choice, or an empty string."""
    match = closest(name, choices, aliases)
    return f" (did you mean {match}?)" if match else ""


def closest_file(path: str | Path, suffixes: tuple[str, ...] = (".yaml", ".yml")) -> str | None:
    """An existing file most like a missing ``path``: same folder, else its nearest parent.

    Looks at files with one of ``suffixes`` in the first existing folder of ``path``'s
    ancestry (one level of sub-folders too), comparing names; returns it as the user
    would type it (relative when ``path`` was).
    """
    path = Path(path)
    folder = path.parent
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return None
    try:
        candidates = [p for pattern in ("*", "*/*") for p in folder.glob(pattern)
                      if p.is_file() and p.suffix in suffixes]
    except OSError:
        return None
    if not candidates:
        return None
    def key(p: Path) -> str:  # names compared without the shared suffix
        return p.with_suffix("").as_posix()

    by_name = {key(c.relative_to(folder)): c for c in sorted(candidates)}
    wanted = key(path.relative_to(folder))
    match = difflib.get_close_matches(wanted, list(by_name), n=1, cutoff=0.6)
    if not match:  # the right name in another sub-folder
        names = {Path(k).name: k for k in by_name}
        near = difflib.get_close_matches(Path(wanted).name, list(names), n=1, cutoff=0.6)
        match = [names[near[0]]] if near else []
    return str(by_name[match[0]]) if match else None
