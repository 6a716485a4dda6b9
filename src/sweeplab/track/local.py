"""The local metric files every run writes: ``metrics.jsonl`` and ``metrics.csv``.

``metrics.jsonl`` is the source of truth: one JSON object per logged step. ``metrics.csv``
mirrors it for spreadsheets and pandas; when a later step brings a key the CSV header
lacks, the CSV is rebuilt from the JSONL with the union of keys. Non-finite values are
written as ``null`` (an empty CSV cell), so both files stay valid for every reader.

Rows are buffered and written in batches: at most ``flush_seconds`` (default 1 s) after
they are logged, every 512 rows, and whenever the run asks for the position (before a
checkpoint), is interrupted or ends. A ``kill -9`` may thus lose the last second of rows,
never more, and never a row a checkpoint covers; ``flush_seconds=0`` writes line by line.
Rows are encoded with orjson (shortest round-trip floats, as Python's ``repr``): about
a microsecond a row of ten scalars, where ``json.dumps`` and ``csv`` cost ~10x more.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson

from sweeplab.core.disk import naming
from sweeplab.core.experiment import atomic_write_bytes

FLUSH_ROWS = 512
_monotonic = time.monotonic
_ORJSON = orjson.OPT_SERIALIZE_NUMPY


class MetricSink(Protocol):
    """Anything that receives a run's metrics (local files, wandb, mlflow, ...)."""

    def log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: non-finite floats become ``None`` (``null``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


class LocalMetricsWriter:
    """Appends metrics to ``<run_dir>/metrics.jsonl`` and ``<run_dir>/metrics.csv``.

    ``truncate_at`` (a byte offset of metrics.jsonl, from a checkpoint) drops the rows
    after it and rebuilds the CSV, so a resumed run continues exactly where its state was
    saved, with no duplicated or missing steps.
    """

    def __init__(
        self,
        run_dir: str | Path,
        step_key: str = "epoch",
        flush_seconds: float = 1.0,
        truncate_at: int | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.step_key = step_key
        self.flush_seconds = flush_seconds
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        self.csv_path = self.run_dir / "metrics.csv"
        self._pending: list[dict[str, Any]] = []
        if truncate_at is not None:
            self._truncate(truncate_at)
        rows = read_metrics(self.jsonl_path)
        self.rows = len(rows)
        self._header: tuple[str, ...] | None = _union(rows) if rows else None
        self._jsonl = open(self.jsonl_path, "ab")  # noqa: SIM115
        self._csv = open(self.csv_path, "ab")  # noqa: SIM115
        self._last_flush = time.monotonic()

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record one row ``{step_key: step, **metrics}``; written within ``flush_seconds``."""
        row = {self.step_key: step if type(step) is int else int(step)}
        row.update(metrics)
        pending = self._pending
        pending.append(row)
        if len(pending) >= FLUSH_ROWS or _monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every pending row to both files and flush them to the OS.

        The common case (numbers only, the CSV's columns) is encoded a batch at a time,
        without a Python loop over rows; anything else takes the general path.
        """
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = _jsonl_lines(pending)
        with naming(self.jsonl_path):
            self._jsonl.write(lines)
            self._jsonl.flush()
        self.rows += len(pending)
        with naming(self.csv_path):
            if self._header is None:
                self._start_csv(tuple(pending[0]))
            cells = self._csv_lines(pending)
            if cells is None:
                self._rebuild_csv()
            else:
                self._csv.write(cells)
                self._csv.flush()

    def _csv_lines(self, rows: list[dict[str, Any]]) -> bytes | None:
        """The CSV lines of ``rows``, or ``None`` when they bring new columns."""
        keys = set(map(tuple, rows))
        if keys == {self._header}:
            blob = _numbers_json(list(map(list, map(dict.values, rows))))
            if blob is not None:
                return blob[2:-2].replace(b"],[", b"\r\n").replace(b"null", b"") + b"\r\n"
        header = set(self._header)
        if not all(header.issuperset(k) for k in keys):
            return None
        return b"".join(_csv_row([row.get(k) for k in self._header]) for row in rows)

    def position(self) -> dict[str, int]:
        """Flush, then where metrics.jsonl ends: ``{"offset": bytes, "rows": lines}``."""
        self.flush()
        return {"offset": self._jsonl.tell(), "rows": self.rows}

    def _start_csv(self, header: tuple[str, ...]) -> None:
        self._header = header
        if self.csv_path.stat().st_size == 0:
            self._csv.write(_csv_header(header))

    def _rebuild_csv(self) -> None:
        """Rewrite the CSV from the JSONL with the union of all keys seen so far."""
        rows = read_metrics(self.jsonl_path)
        self._csv.close()
        self._header = _union(rows)
        atomic_write_bytes(self.csv_path, _csv_bytes(rows, self._header))
        self._csv = open(self.csv_path, "ab")  # noqa: SIM115

    def _truncate(self, offset: int) -> None:
        """Keep the first ``offset`` bytes of metrics.jsonl; rebuild metrics.csv from it."""
        if self.jsonl_path.exists():
            with open(self.jsonl_path, "r+b") as fh:
                fh.truncate(offset)
        else:
            self.jsonl_path.write_bytes(b"")
        rows = read_metrics(self.jsonl_path)
        atomic_write_bytes(self.csv_path, _csv_bytes(rows, _union(rows)) if rows else b"")

    def close(self) -> None:
        """Write what is pending and close both files (idempotent)."""
        if not self._jsonl.closed:
            self.flush()
        for fh in (self._jsonl, self._csv):
            if not fh.closed:
                fh.close()


def _jsonl_lines(rows: list[dict[str, Any]]) -> bytes:
    """The JSON lines of ``rows``: one orjson call for the batch, split between objects.

    Rows are flat, so ``},{`` occurs only between them unless a string value holds it:
    then the count is off and each row is encoded alone.
    """
    try:
        blob = orjson.dumps(rows, option=_ORJSON)
    except TypeError:  # a value orjson does not know
        return b"".join(_general_line(row) for row in rows)
    if blob.count(b"},{") == len(rows) - 1:
        return blob[1:-1].replace(b"},{", b"}\n{") + b"\n"
    return b"".join(orjson.dumps(row, option=_ORJSON) + b"\n" for row in rows)


def _general_line(row: dict[str, Any]) -> bytes:
    row = {k: _clean(v) for k, v in row.items()}
    return json.dumps(row, allow_nan=False).encode() + b"\n"


def _numbers_json(values: list[Any]) -> bytes | None:
    """orjson's text of ``values`` when it holds no string (so ``null`` is always a whole
    cell and nothing needs CSV quoting), else None. The one number encoding of the CSV."""
    try:
        blob = orjson.dumps(values, option=_ORJSON)
    except TypeError:
        return None
    return None if b'"' in blob else blob


def _csv_row(values: list[Any]) -> bytes:
    """One CSV line, cell for cell as the batch path writes it (orjson's numbers), so a
    CSV rebuilt on resume or on new columns has the bytes of one written straight on."""
    blob = _numbers_json(values)
    if blob is not None:
        return blob[1:-1].replace(b"null", b"") + b"\r\n"
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else _clean(v) for v in values])
    return buffer.getvalue().encode()


def _union(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    return tuple(header)


def _csv_header(header: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    return buffer.getvalue().encode()


def _csv_bytes(rows: list[dict[str, Any]], header: tuple[str, ...]) -> bytes:
    """The whole CSV of ``rows`` under ``header`` (a missing key is an empty cell)."""
    return _csv_header(header) + b"".join(_csv_row([row.get(k) for k in header])
                                          for row in rows)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl``; a torn last line (crash mid-write) is ignored."""
    rows: list[dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return rows
    with open(path, "rb") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                break
    return rows
