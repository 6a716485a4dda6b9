"""A SQLite index of the runs under a directory, for ``sweeplab ls`` queries.

The run directories stay the source of truth; the index is derived from them and kept
in ``<DIR>/.sweeplab/index.sqlite``. Each :meth:`RunIndex.refresh` walks the directory,
re-reads a run only when the size, mtime or inode of its ``config.yaml``,
``status.json`` or ``final.json`` changed, and drops the rows of runs that are gone. An
index that cannot be read, or of an older schema, is deleted and rebuilt; where none can
be written (a read-only folder), an in-memory one answers the query.

Layout: ``runs(id, path, stamp)`` and one row per value in
``fields(run_id, key, pos, num, text, value)``: ``key`` is a config key, ``final.<metric>``
or a built-in (:data:`BUILTIN_KEYS`); ``num`` the value when it is a number (else NULL),
``text`` its text (:func:`~sweeplab.core.run_query.as_text`) and ``value`` its JSON.
A comparison uses ``num`` when both sides are numbers and ``text`` otherwise.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sweeplab.core.experiment import to_jsonable
from sweeplab.core.run_query import Comparison, Node, as_text, comparisons, to_sql
from sweeplab.errors import ConfigError

SCHEMA_VERSION = 1
"""Bumped whenever the tables change; an index of another version is rebuilt."""

INDEX_DIR = ".sweeplab"
INDEX_FILE = "index.sqlite"
RUN_FILES = ("config.yaml", "status.json", "final.json")
"""The files a run's row is read from: a change to any of them re-reads the run."""

BUILTIN_KEYS = ("name", "state", "study", "duration_s", "started", "ended", "error",
                "config_hash")
"""Keys every run has. ``name`` is the run's path relative to the indexed directory."""

_SCHEMA = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, stamp TEXT NOT NULL);
CREATE TABLE fields (
    run_id INTEGER NOT NULL, key TEXT NOT NULL, pos INTEGER NOT NULL,
    num REAL, text TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX fields_by_key ON fields (key, num, text);
"""

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_FINITE = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf}
_CONFIG_POS, _FINAL_POS = 1_000, 1_000_000
"""Positions order the keys: built-ins, then config keys, then final metrics."""


@dataclass
class RefreshStats:
    """What one refresh did: runs (re-)read, rows dropped, runs indexed, a rebuild."""

    read: int = 0
    removed: int = 0
    total: int = 0
    rebuilt: bool = False


@dataclass
class RunRow:
    """One run of a query: its directory and every indexed value (key -> value)."""

    run_dir: Path
    values: dict[str, Any] = field(default_factory=dict)


def index_path(root: str | Path) -> Path:
    """Where the index of the runs under ``root`` lives."""
    return Path(root) / INDEX_DIR / INDEX_FILE


def _stamp(run_dir: Path) -> str:
    parts = []
    for name in RUN_FILES:
        try:
            st = os.stat(run_dir / name)
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{st.st_mtime_ns}:{st.st_size}:{st.st_ino}")
    return " ".join(parts)


def _load(path: Path, kind: str) -> Any:
    """A JSON or YAML mapping, or ``None`` when the file is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if kind == "json" else yaml.load(text, Loader=_YAML_LOADER)
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _final_value(value: Any) -> Any:
    """A final metric as stored: ``"inf"``/``"-inf"`` (save_json's spelling) -> float."""
    if isinstance(value, str):
        return _NON_FINITE.get(value.strip().lower(), value)
    return value


def read_run(run_dir: Path, name: str) -> dict[str, tuple[int, Any]]:
    """Every indexed value of one run: key -> (position, value).

    ``state`` is the status file's (``pending`` without one, ``unknown`` when it cannot
    be read). A config key that collides with a built-in is indexed as ``config.<key>``.
    """
    header = _load(run_dir / "config.yaml", "yaml") or {}
    status = _load(run_dir / "status.json", "json")
    final = _load(run_dir / "final.json", "json") or {}
    if status is None:
        state = "unknown" if (run_dir / "status.json").exists() else "pending"
        status = {}
    else:
        state = status.get("state", "unknown")
    values: dict[str, Any] = {
        "name": name,
        "state": state,
        "study": header.get("study"),
        "duration_s": status.get("duration_s"),
        "started": status.get("started"),
        "ended": status.get("ended"),
        "error": status.get("error"),
        "config_hash": header.get("config_hash", status.get("config_hash")),
    }
    out = {k: (i, v) for i, (k, v) in enumerate(values.items())}
    config = header.get("config")
    for i, (key, value) in enumerate((config if isinstance(config, dict) else {}).items()):
        out[f"config.{key}" if key in BUILTIN_KEYS else str(key)] = (_CONFIG_POS + i, value)
    for i, (key, value) in enumerate(final.items()):
        out[f"final.{key}"] = (_FINAL_POS + i, _final_value(value))
    return out


def _field_row(run_id: int, key: str, pos: int, value: Any) -> tuple:
    """The ``fields`` row of one value (NaN is stored as null)."""
    if isinstance(value, float) and math.isnan(value):
        value = None
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None
    return (run_id, key, pos, number, as_text(value), json.dumps(to_jsonable(value)))


def unknown_key(flag: str, key: str, known: list[str]) -> ConfigError:
    """The one-line error for a key no run has, listing the known keys."""
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return ConfigError(flag, key, f"no run has this key; {hint}known keys: {', '.join(known)}")


class RunIndex:
    """The index of the runs under ``root``; use :meth:`open` (it refreshes)."""

    def __init__(self, root: Path, conn: sqlite3.Connection, location: str):
        self.root = root
        self.conn = conn
        self.location = location
        self.stats = RefreshStats()
        self.rebuilt = False

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, root: str | Path) -> RunIndex:
        """Open (or build) the index of ``root`` and bring it up to date."""
        from sweeplab.core.run_dirs import RUN_MARKERS

        root = Path(root)
        if any((root / m).exists() for m in RUN_MARKERS):
            return cls._memory(root)  # a run directory itself: keep nothing in it
        path = index_path(root)
        index = None
        try:
            path.parent.mkdir(exist_ok=True)
            index = cls._file(root, path)
            try:
                index.refresh()
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError:  # corrupt past its header: start again
                index.close()
                _remove(path)
                index = cls._file(root, path)
                index.refresh()
                index.stats.rebuilt = True
        except (OSError, sqlite3.OperationalError):  # read-only folder, locked file
            if index is not None:
                index.close()
            return cls._memory(root)
        return index

    @classmethod
    def _file(cls, root: Path, path: Path) -> RunIndex:
        conn, rebuilt = _connect(path)
        index = cls(root, conn, str(path))
        index.rebuilt = rebuilt
        return index

    @classmethod
    def _memory(cls, root: Path) -> RunIndex:
        conn = sqlite3.connect(":memory:")
        conn.executescript(_SCHEMA)
        index = cls(root, conn, ":memory:")
        index.refresh()
        return index

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ refreshing

    def refresh(self) -> RefreshStats:
        """Bring the index in line with the run directories under ``root``."""
        from sweeplab.core.run_dirs import find_run_dirs

        stats = RefreshStats(rebuilt=self.rebuilt)
        self.rebuilt = False
        found = {}
        for run_dir in find_run_dirs(self.root):
            rel = run_dir.relative_to(self.root).as_posix()
            found[rel] = run_dir
        with self.conn:
            known = dict(self.conn.execute("SELECT path, stamp FROM runs"))
            for rel in set(known) - set(found):
                self._delete(rel)
                stats.removed += 1
            for rel, run_dir in sorted(found.items()):
                stamp = _stamp(run_dir)
                if known.get(rel) == stamp:
                    continue
                name = run_dir.name if rel == "." else rel
                self._store(rel, stamp, read_run(run_dir, name))
                stats.read += 1
        stats.total = len(found)
        self.stats = stats
        return stats

    def _delete(self, rel: str) -> None:
        row = self.conn.execute("SELECT id FROM runs WHERE path = ?", (rel,)).fetchone()
        if row:
            self.conn.execute("DELETE FROM fields WHERE run_id = ?", row)
            self.conn.execute("DELETE FROM runs WHERE id = ?", row)

    def _store(self, rel: str, stamp: str, values: dict[str, tuple[int, Any]]) -> None:
        self._delete(rel)
        run_id = self.conn.execute(
            "INSERT INTO runs (path, stamp) VALUES (?, ?)", (rel, stamp)).lastrowid
        self.conn.executemany(
            "INSERT INTO fields (run_id, key, pos, num, text, value) VALUES (?, ?, ?, ?, ?, ?)",
            [_field_row(run_id, key, pos, value) for key, (pos, value) in values.items()],
        )

    # ------------------------------------------------------------------ querying

    def keys(self) -> list[str]:
        """Every key some run has: built-ins, config keys (config order), final metrics."""
        rows = self.conn.execute(
            "SELECT key FROM fields GROUP BY key ORDER BY MIN(pos), key").fetchall()
        seen = [r[0] for r in rows if r[0] not in BUILTIN_KEYS]
        return list(BUILTIN_KEYS) + seen

    def count(self) -> int:
        """Number of indexed runs."""
        return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def check_keys(self, flag: str, keys: list[str]) -> None:
        """:class:`ConfigError` naming ``flag`` for the first key no run has."""
        known = self.keys()
        for key in keys:
            if key not in known:
                raise unknown_key(flag, key, known)

    def query(
        self,
        where: Node | None = None,
        sort: str | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[RunRow]:
        """The runs matching ``where``, sorted by ``sort`` (then name), at most ``limit``.

        A run without the compared key matches no comparison. Sorting puts numbers
        (numerically) before text values, and runs without the key (or with a null
        value) last, ascending or descending.
        """
        if where is not None:
            self.check_keys("where key", [c.key for c in comparisons(where)])
        sort_key = sort or "name"
        self.check_keys("sort", [sort_key])
        order = "DESC" if desc else "ASC"
        sql = ("SELECT r.id, r.path FROM runs r "
               "LEFT JOIN fields s ON s.run_id = r.id AND s.key = ?")
        params: list[Any] = [sort_key]
        if where is not None:
            condition, where_params = to_sql(where, _comparison_sql)
            sql += f" WHERE {condition}"
            params += where_params
        sql += (" ORDER BY s.run_id IS NULL OR s.value = 'null', s.num IS NULL,"
                f" s.num {order}, s.text {order}, r.path")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        ids = self.conn.execute(sql, params).fetchall()
        rows = {run_id: RunRow(self.root if rel == "." else self.root / rel)
                for run_id, rel in ids}
        id_list = [run_id for run_id, _ in ids]
        for start in range(0, len(id_list), 500):
            chunk = id_list[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value in self.conn.execute(
                    f"SELECT run_id, key, value FROM fields WHERE run_id IN ({marks}) "
                    "ORDER BY run_id, pos", chunk):
                rows[run_id].values[key] = json.loads(value)
        return [rows[run_id] for run_id in id_list]


def _comparison_sql(c: Comparison) -> tuple[str, list[Any]]:
    """SQL of one comparison: numeric when the value and the stored field are numbers."""
    op = c.op  # from run_query.OPERATORS: a fixed set, never user text
    head = "EXISTS (SELECT 1 FROM fields f WHERE f.run_id = r.id AND f.key = ? AND "
    number = c.number()
    if number is None:
        return head + f"f.text {op} ?)", [c.key, c.text()]
    return (head + f"(CASE WHEN f.num IS NOT NULL THEN f.num {op} ? ELSE f.text {op} ? END))",
            [c.key, number, c.text()])


def _connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    """A connection to the index file at ``path`` and whether the file was rebuilt.

    A file that is not a database, or holds another schema version, is deleted first.
    """
    rebuilt = False
    for _attempt in range(2):
        conn = sqlite3.connect(path, timeout=30)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if version == SCHEMA_VERSION and {"runs", "fields"} <= tables:
                conn.execute("SELECT COUNT(*) FROM runs").fetchone()
                return conn, rebuilt
            if not tables and version == 0:  # a new, empty file
                conn.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
                return conn, rebuilt
        except sqlite3.OperationalError:
            conn.close()
            raise
        except sqlite3.DatabaseError:
            pass
        conn.close()
        _remove(path)
        rebuilt = True
    raise sqlite3.OperationalError(f"cannot create an index at {path}")


def _remove(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
