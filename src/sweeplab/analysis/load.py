"""Load finished runs from their directories into tables: one row per run, one per epoch.

The run directories are the source of truth (``config.yaml``, ``status.json``,
``final.json``, ``metrics.jsonl``); everything here is derived from them. A run that
cannot be used (no config, a corrupt file, not finished) is listed with the reason and
left out, never the end of the analysis: the rest is analysed.

Per-epoch metrics are read through a columnar cache: ``metrics.parquet`` beside each
``metrics.jsonl``, written the first time and reused while it still describes that
JSONL (the size and modification time of the JSONL it was built from are stored in the
Parquet metadata; any change rebuilds it). Delete the caches freely: they come back.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import yaml

from sweeplab.core.run_dirs import RUN_MARKERS  # noqa: F401 - part of this module's API
from sweeplab.core.run_dirs import find_run_dirs as _find_run_dirs
from sweeplab.errors import SweeplabError

METRICS_JSONL = "metrics.jsonl"
METRICS_CACHE = "metrics.parquet"
STEP_KEY = "epoch"
OTHER_STEP_KEYS = ("step",)
"""Step columns of studies that count steps, not epochs (a command study's ``step``):
read into the ``epoch`` column, the step axis of every table here."""

_CACHE_KEY = b"sweeplab.jsonl_stat"
"""Parquet metadata key: ``"<size> <mtime_ns>"`` of the JSONL the cache was built from."""

_IO_THREADS = min(8, 2 * (os.cpu_count() or 1))
"""Threads reading files at once: file reads and Arrow's decoding release the GIL, and
on a network file system small files spend their time waiting for it. Parsing YAML and
JSON holds the GIL, so it runs on one thread."""

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML has it (about 10x faster on thousands of configs)."""


class AnalysisInputError(SweeplabError, ValueError):
    """The runs given to the analysis cannot be analysed (none usable, or a bad request)."""


class MixedStudiesError(AnalysisInputError):
    """Runs of several studies were given together; ``counts`` maps study -> run count."""

    def __init__(self, counts: dict[str, int], where: Sequence[str]):
        self.counts = dict(counts)
        self.where = list(where)
        studies = ", ".join(f"{s} ({n} run{'' if n == 1 else 's'})"
                            for s, n in sorted(self.counts.items()))
        super().__init__(
            f"{', '.join(self.where)}: runs of several studies: {studies}; "
            "analyse one study at a time (study=...)"
        )


@dataclass
class LoadedRuns:
    """The usable runs of some directories, and what was left out.

    ``runs``: one row per usable run (see :func:`load_runs` for the columns).
    ``skipped``: ``(run directory, reason)`` for each run left out of ``runs``.
    ``studies``: the studies named by the readable configs (before any ``study=``
    filter); without a filter, exactly one.
    ``metrics_skipped``: ``(run directory, reason)`` for runs whose per-epoch metrics
    could not be read by the latest :func:`load_metrics`; they stay in ``runs`` (their
    final metrics are fine) but have no curves.
    """

    runs: pd.DataFrame
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)
    metrics_skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def config_keys(self) -> list[str]:
        """The config parameters, as columns of ``runs``."""
        return list(self.runs.attrs.get("config_keys", []))

    @property
    def final_metrics(self) -> list[str]:
        """The final metric names (without the ``final.`` prefix)."""
        return [c[len("final."):] for c in self.runs.columns if c.startswith("final.")]


# --------------------------------------------------------------------------- finding runs


def find_run_dirs(path: str | Path) -> list[Path]:
    """The run directories at or under ``path`` (:func:`sweeplab.core.run_dirs.find_run_dirs`)."""
    if not Path(path).is_dir():
        raise AnalysisInputError(f"{path}: no such directory")
    return _find_run_dirs(path)


# --------------------------------------------------------------------------- loading runs


def _hashable(value: Any) -> Any:
    """A config value as a hashable cell: lists become tuples, mappings sorted JSON."""
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


_NON_FINITE = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _final_cell(value: Any) -> Any:
    """A final metric as a scalar cell.

    ``"inf"``/``"-inf"`` (how :func:`sweeplab.core.experiment.save_json` writes
    non-finite floats) become floats again; lists (such as ``warnings``) are joined with
    ``"; "``; mappings become JSON text.
    """
    if isinstance(value, str):
        return _NON_FINITE.get(value.strip().lower(), value)
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


_RUN_FILES = ("config.yaml", "status.json", "final.json")


def _read_files(run_dir: Path) -> tuple[bytes | OSError | None, ...]:
    """The raw bytes of a run's config, status and final files (``None``: no such file).

    Only I/O, so that many runs can be read on threads while the parsing, which holds
    the GIL, happens on one.
    """
    out: list[bytes | OSError | None] = []
    for name in _RUN_FILES:
        try:
            with open(run_dir / name, "rb") as fh:
                out.append(fh.read())
        except FileNotFoundError:
            out.append(None)
        except OSError as exc:
            out.append(exc)
    return tuple(out)


def _json_dict(data: bytes | OSError) -> dict[str, Any]:
    if isinstance(data, OSError):
        raise data
    obj = json.loads(data)
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _required_json(
    data: bytes | OSError | None, name: str, missing: str = ""
) -> tuple[dict[str, Any] | None, str | None]:
    """``(content, None)``, or ``(None, reason)`` when the file is missing or corrupt."""
    if data is None:
        return None, f"missing {name}{missing}"
    try:
        return _json_dict(data), None
    except (ValueError, OSError) as exc:
        return None, f"corrupt {name} ({_first_line(exc)})"


def _parse_run(run_dir: Path, files: tuple[bytes | OSError | None, ...]
               ) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """``(record, study, reason)``: the run's row, its study, or why it is unusable.

    ``study`` is returned whenever the config is readable, so that runs left out for
    their state still count towards the studies seen.
    """
    config_data, status_data, final_data = files
    if config_data is None:
        return None, None, "missing config.yaml"
    try:
        if isinstance(config_data, OSError):
            raise config_data
        doc = yaml.load(config_data, Loader=_YAML_LOADER)  # a safe loader
        if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            raise ValueError("expected a mapping with a 'config' mapping")
    except (yaml.YAMLError, ValueError, OSError) as exc:
        return None, None, f"corrupt config.yaml ({_first_line(exc)})"
    study = str(doc.get("study")) if doc.get("study") is not None else "unknown"

    status, reason = _required_json(status_data, "status.json")
    if status is None:
        return None, study, reason
    state = str(status.get("state", "unknown"))
    if state != "done":
        error = status.get("error")
        detail = f": {str(error).strip().splitlines()[0]}" if error else ""
        return None, study, f"state {state}{detail}"

    final, reason = _required_json(final_data, "final.json", " (state done)")
    if final is None:
        return None, study, reason

    record: dict[str, Any] = {
        "run_dir": str(run_dir),
        "grid": run_dir.parent.name,
        "study": study,
        "state": state,
        "duration_s": status.get("duration_s"),
        "config_hash": doc.get("config_hash", status.get("config_hash")),
    }
    config = {k: _hashable(v) for k, v in doc["config"].items()}
    record["__config__"] = config
    record["__final__"] = {f"final.{k}": _final_cell(v) for k, v in final.items()}
    return record, study, None


def _map_chunked(fn, items: Sequence[Any], threads: int) -> list[Any]:
    """``[fn(x) for x in items]``, on ``threads`` threads in chunks (serial when small)."""
    if threads <= 1 or len(items) < 64:
        return [fn(item) for item in items]
    size = max(16, len(items) // (4 * threads))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda chunk: [fn(item) for item in chunk], chunks)
        return [result for part in parts for result in part]


def _unique_ids(run_dirs: Sequence[Path]) -> list[str]:
    """``<grid dir>/<run dir>`` per run; where two collide, their full paths instead."""
    ids = [f"{d.parent.name}/{d.name}" for d in run_dirs]
    counts = Counter(ids)
    return [i if counts[i] == 1 else str(d) for i, d in zip(ids, run_dirs)]


def load_runs(input_dirs: Sequence[str | Path] | str | Path,
              study: str | None = None) -> LoadedRuns:
    """Read every run under ``input_dirs`` into one table (see :func:`find_run_dirs`).

    Columns of ``runs``: ``run_id`` (``<grid dir name>/<run dir name>``, unique),
    ``run_dir``, ``grid``, ``study``, ``state``, ``duration_s``, ``config_hash``, then
    each config parameter as its own column (lists as tuples so they can be grouped on,
    ``None`` kept; a parameter named like one of those columns becomes
    ``config.<name>``), then each final metric as ``final.<name>`` (lists such as
    ``warnings`` joined into a string; ``"inf"`` back to a float).

    Runs left out, each listed in ``skipped`` with its reason: a missing or corrupt
    ``config.yaml`` or ``status.json``, a state other than ``done`` (the reason names
    it), a done run whose ``final.json`` is missing or corrupt.

    ``study``: keep only runs of this study. Without it, runs of several studies (any
    run whose config names its study counts, finished or not) raise
    :class:`MixedStudiesError` naming each study and its run count, so ``studies`` then
    holds exactly the one study analysed. No usable run at all raises
    :class:`AnalysisInputError` naming the directories.
    """
    if isinstance(input_dirs, (str, Path)):
        input_dirs = [input_dirs]
    where = [str(d) for d in input_dirs]
    if not where:
        raise AnalysisInputError("no input directory given")
    run_dirs: list[Path] = []
    seen: set[str] = set()
    for d in input_dirs:
        for run_dir in find_run_dirs(d):
            key = os.path.realpath(run_dir)
            if key not in seen:
                seen.add(key)
                run_dirs.append(run_dir)

    raw = _map_chunked(_read_files, run_dirs, _IO_THREADS)
    results = [_parse_run(d, files) for d, files in zip(run_dirs, raw)]
    del raw
    ids = _unique_ids(run_dirs)
    skipped: list[tuple[Path, str]] = []
    records: list[dict[str, Any]] = []
    study_counts: Counter[str] = Counter()
    for run_dir, run_id, (record, run_study, reason) in zip(run_dirs, ids, results):
        if run_study is not None:
            study_counts[run_study] += 1
        if record is None:
            skipped.append((run_dir, reason or "unusable"))
            continue
        if study is not None and run_study != study:
            skipped.append((run_dir, f"study {run_study}, not {study}"))
            continue
        record["run_id"] = run_id
        records.append(record)

    if study is None and len(study_counts) > 1:
        raise MixedStudiesError(dict(study_counts), where)
    if not records:
        what = f"no usable run of study {study}" if study else "no usable run"
        detail = f" ({len(skipped)} skipped)" if skipped else " (no run directory found)"
        raise AnalysisInputError(f"{', '.join(where)}: {what}{detail}")
    return LoadedRuns(runs=_runs_frame(records), skipped=skipped, studies=set(study_counts))


_BASE_COLUMNS = ("run_id", "run_dir", "grid", "study", "state", "duration_s", "config_hash")


def _runs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The runs table from the records of :func:`_parse_run`, columns in a stable order."""
    config_keys: list[str] = []
    final_keys: list[str] = []
    seen_c: set[str] = set()
    seen_f: set[str] = set()
    for r in records:
        for k in r["__config__"]:
            if k not in seen_c:
                seen_c.add(k)
                config_keys.append(k)
        for k in r["__final__"]:
            if k not in seen_f:
                seen_f.add(k)
                final_keys.append(k)
    columns: dict[str, Any] = {c: [r[c] for r in records] for c in _BASE_COLUMNS}
    column_of = {k: f"config.{k}" if k in _BASE_COLUMNS else k for k in config_keys}
    for k in config_keys:
        columns[column_of[k]] = _object_column([r["__config__"].get(k) for r in records])
    for k in final_keys:
        columns[k] = _final_column([r["__final__"].get(k) for r in records])
    frame = pd.DataFrame(columns)
    frame["duration_s"] = pd.to_numeric(frame["duration_s"], errors="coerce")
    frame.attrs["config_keys"] = [column_of[k] for k in config_keys]
    return frame


def _object_column(values: list[Any]) -> pd.Series | list[Any]:
    """Config values: numbers/strings as pandas infers them, tuples kept whole."""
    if any(isinstance(v, tuple) for v in values):
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return pd.Series(arr, dtype=object)
    if any(v is None for v in values):
        return pd.Series(values, dtype=object)  # keep None, do not turn it into NaN
    return values


def _final_column(values: list[Any]) -> pd.Series:
    """Final metrics: float64 where every value is a number, bool or missing."""
    numeric = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                  for v in values)
    if numeric:
        return pd.Series([math.nan if v is None else v for v in values], dtype="float64")
    if all(v is None or isinstance(v, bool) for v in values):
        return pd.Series(values, dtype="boolean")
    return pd.Series(values, dtype=object)


# --------------------------------------------------------------------------- metrics


def _stat_tag(st: os.stat_result) -> bytes:
    return f"{st.st_size} {st.st_mtime_ns}".encode()


def _parse_jsonl(path: Path) -> pa.Table:
    """Parse ``metrics.jsonl`` into a table: ``epoch`` int64, every metric float64.

    A torn last line (no newline, not valid JSON: a crash mid-write) is dropped; a bad
    line elsewhere raises ``ValueError``. Booleans become 0/1, null and non-numeric
    values NaN.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    if tail.strip():
        try:
            json.loads(tail)
            end = len(data)  # a complete last line that merely lacks its newline
        except ValueError:
            pass
    data = data[:end]
    if not data.strip():
        return pa.table({STEP_KEY: pa.array([], pa.int64())})
    try:
        table = pa_json.read_json(
            io.BytesIO(data),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
    except pa.ArrowInvalid as exc:
        raise ValueError(_first_line(exc)) from None
    first = table.column_names[0]  # the writer puts the step first in every row
    step = first if first in (STEP_KEY, *OTHER_STEP_KEYS) else STEP_KEY
    if step not in table.column_names:
        raise ValueError(f"no {STEP_KEY!r} key")
    arrays, names = [], []
    for name, col in zip(table.column_names, table.columns):
        if name == STEP_KEY and step != STEP_KEY:
            name = f"{STEP_KEY}_logged"  # a metric named epoch, beside a step column
        if name == step:
            name = STEP_KEY
            arrays.append(col.cast(pa.int64()))
        else:
            arrays.append(_as_float(col))
        names.append(name)
    return pa.table(arrays, names=names)


def _as_float(col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) \
            or pa.types.is_null(t):
        return col.cast(pa.float64())
    return pa.chunked_array([pa.nulls(len(col), pa.float64())])


def _write_cache(table: pa.Table, cache: Path, st: os.stat_result) -> None:
    """Write the Parquet cache atomically (temp file + ``os.replace``) with its JSONL stat."""
    meta = dict(table.schema.metadata or {})
    meta[_CACHE_KEY] = _stat_tag(st)
    table = table.replace_schema_metadata(meta)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.{id(table)}.tmp")
    try:
        pq.write_table(table, tmp, compression="none", use_dictionary=False,
                       write_statistics=False)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only run directory: no cache, still correct


def _read_cache(cache: Path, st: os.stat_result, metrics: Sequence[str] | None
                ) -> pa.Table | None:
    """The cached table if it was built from this very JSONL, else ``None``.

    The file is read whole into memory first: for small files this is markedly faster
    than Arrow's many small reads, and columns are selected from the buffer.
    """
    try:
        with open(cache, "rb") as fh:
            pf = pq.ParquetFile(pa.py_buffer(fh.read()))
        meta = pf.metadata.metadata or {}
        if meta.get(_CACHE_KEY) != _stat_tag(st):
            return None
        present = set(pf.schema_arrow.names)
        columns = None if metrics is None \
            else [STEP_KEY, *(m for m in metrics if m in present)]
        return pf.read(columns=columns, use_threads=False)
    except (OSError, pa.ArrowException):
        return None


def _run_metrics(run_dir: Path, metrics: Sequence[str] | None) -> pa.Table | str:
    """One run's per-epoch metrics (cache first), or the reason they cannot be read."""
    jsonl = run_dir / METRICS_JSONL
    try:
        st = os.stat(jsonl)
    except FileNotFoundError:
        return f"missing {METRICS_JSONL}"
    except OSError as exc:
        return f"unreadable {METRICS_JSONL} ({_first_line(exc)})"
    cache = run_dir / METRICS_CACHE
    table = _read_cache(cache, st, metrics)
    if table is not None:
        return table
    try:
        table = _parse_jsonl(jsonl)
    except (ValueError, OSError) as exc:
        return f"corrupt {METRICS_JSONL} ({exc})"
    _write_cache(table, cache, st)
    if metrics is not None:
        table = table.select([STEP_KEY, *(m for m in metrics if m in table.column_names)])
    return table


def load_metrics(loaded: LoadedRuns, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-epoch metrics of every run in ``loaded``, stacked: one row per run and epoch.

    Columns: ``run_id`` (categorical, in the order of ``loaded.runs``), ``epoch``
    (int64) and one float64 column per metric (``metrics``, or every metric any run
    logged), NaN where a run did not log it. Rows keep each file's order.

    Reads ``metrics.parquet`` where it is current and otherwise parses ``metrics.jsonl``
    and (re)writes the cache. A run whose ``metrics.jsonl`` is missing or corrupt is
    recorded in ``loaded.metrics_skipped`` (replaced on each call) and has no rows.
    The files' tables are stacked by Arrow (no copy) and converted once into pandas.
    """
    run_ids = list(loaded.runs["run_id"])
    run_dirs = [Path(p) for p in loaded.runs["run_dir"]]
    wanted = None if metrics is None else [m for m in dict.fromkeys(metrics) if m != STEP_KEY]
    results = _map_chunked(lambda d: _run_metrics(d, wanted), run_dirs, _IO_THREADS)

    skipped: list[tuple[Path, str]] = []
    tables: list[tuple[int, pa.Table]] = []
    names: list[str] = [] if wanted is None else list(wanted)
    seen = set(names)
    for i, (run_dir, result) in enumerate(zip(run_dirs, results)):
        if isinstance(result, str):
            skipped.append((run_dir, result))
            continue
        if wanted is None:
            for n in result.column_names:
                if n != STEP_KEY and n not in seen:
                    seen.add(n)
                    names.append(n)
        tables.append((i, result))
    loaded.metrics_skipped = skipped

    sizes = np.array([t.num_rows for _, t in tables], dtype=np.int64)
    codes = np.repeat(np.array([i for i, _ in tables], dtype=np.int32), sizes)
    schema = pa.schema([(STEP_KEY, pa.int64()), *((n, pa.float64()) for n in names)])
    combined = pa.concat_tables([_conform(t, schema) for _, t in tables]) if tables \
        else schema.empty_table()
    combined = combined.replace_schema_metadata(None)
    del tables, results
    # Arrow writes every metric straight into one 2-D float block: a single copy, and
    # the layout pandas' groupby reduces fastest (about 1.5x a frame of 1-D blocks)
    frame = combined.to_pandas(use_threads=True)
    del combined
    frame.insert(0, "run_id", pd.Categorical.from_codes(codes, categories=run_ids))
    return frame


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns (missing ones all null).

    Schema metadata is ignored (``pa.concat_tables`` does too), so the common case of a
    table that already has these columns costs nothing.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    have = set(table.column_names)
    n = table.num_rows
    arrays = [table.column(f.name) if f.name in have else pa.nulls(n, f.type)
              for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
