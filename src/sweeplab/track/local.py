"""The local metric files every run writes: ``metrics.jsonl`` and ``metrics.csv``.

``metrics.jsonl`` is the source of truth: one JSON object per logged step, written as the
run goes. Rows are buffered and written in batches: at most ``flush_seconds`` (default
1 s) after they are logged, every 512 rows, and whenever the run asks for the position
(before a checkpoint), is interrupted or ends. A ``kill -9`` may thus lose the last second
of rows, never more, and never a row a checkpoint covers; ``flush_seconds=0`` writes line
by line. Rows are encoded with orjson (shortest round-trip floats): about a microsecond a
row of ten scalars. Non-finite values are written as ``null``.

``metrics.csv`` is derived from it with a real CSV writer (the csv module) at each
checkpoint (:meth:`LocalMetricsWriter.position`) and at the end: the rows logged since the
last time are appended, and the whole file is rebuilt when a row brings a key the header
lacks (the header is the union of keys, in first-seen order). Cells: numbers and booleans
as the JSON has them (orjson's text, so a CSV rebuilt on resume has the bytes of one
written straight on), ``null`` as an empty cell, strings as they are and lists or mappings
as compact JSON text, all quoted by the CSV writer wherever they hold a comma, a quote or a
line break. Between checkpoints the CSV lags the JSONL; a reader following a run live
reads the JSONL.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from sweeplab.core.context import MetricSink, RunContext
from sweeplab.core.disk import naming
from sweeplab.core.rundir import METRICS_CSV, METRICS_JSONL, TRAIN_LOG, atomic_write_bytes
from sweeplab.track.trainlog import TrainLog

__all__ = ["LocalMetricsWriter", "MetricSink", "read_metrics", "read_metrics_from",
           "run_context"]

FLUSH_ROWS = 512
_monotonic = time.monotonic
_ORJSON = orjson.OPT_SERIALIZE_NUMPY


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: non-finite floats become ``None`` (``null``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    value = float(value)
    return value if math.isfinite(value) else None


class LocalMetricsWriter:
    """Appends metrics to ``<run_dir>/metrics.jsonl`` and derives ``<run_dir>/metrics.csv``.

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
        self.jsonl_path = self.run_dir / METRICS_JSONL
        self.csv_path = self.run_dir / METRICS_CSV
        self._pending: list[dict[str, Any]] = []
        if truncate_at is not None:
            self._truncate(truncate_at)
        self._jsonl = open(self.jsonl_path, "ab")  # noqa: SIM115
        self._header: tuple[str, ...] = ()
        self._csv_offset = 0
        self.rows = self._write_csv_from(0)
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
        """Write every pending row to metrics.jsonl and flush it to the OS."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = _jsonl_lines(pending)
        with naming(self.jsonl_path):
            self._jsonl.write(lines)
            self._jsonl.flush()
        self.rows += len(pending)

    def position(self) -> dict[str, int]:
        """Flush, bring metrics.csv up to date, and say where metrics.jsonl ends:
        ``{"offset": bytes, "rows": lines}`` (what a checkpoint records)."""
        self.flush()
        offset = self._jsonl.tell()
        self._write_csv_from(self._csv_offset)
        return {"offset": offset, "rows": self.rows}

    def _write_csv_from(self, offset: int) -> int:
        """Append the CSV rows of the JSONL rows after byte ``offset``; rebuild the whole
        CSV when they bring a new key, or when ``offset`` is 0. Returns the rows read."""
        with naming(self.csv_path):
            rows, end = read_metrics_from(self.jsonl_path, offset)
            header = _union([dict.fromkeys(self._header), *rows])
            if offset == 0 or header != self._header:
                if offset:
                    rows, end = read_metrics_from(self.jsonl_path, 0)
                self._header = _union(rows)
                atomic_write_bytes(self.csv_path, _csv_bytes(rows, self._header) if rows
                                   else b"")
            elif rows:
                with open(self.csv_path, "ab") as fh:
                    fh.write(_csv_rows(rows, self._header))
        self._csv_offset = end
        return len(rows)

    def _truncate(self, offset: int) -> None:
        """Keep the first ``offset`` bytes of metrics.jsonl (the CSV is rebuilt from it)."""
        if self.jsonl_path.exists():
            with open(self.jsonl_path, "r+b") as fh:
                fh.truncate(offset)
        else:
            self.jsonl_path.write_bytes(b"")

    def close(self) -> None:
        """Write what is pending, bring metrics.csv up to date and close (idempotent)."""
        if self._jsonl.closed:
            return
        self.flush()
        self._jsonl.close()
        self._write_csv_from(self._csv_offset)


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


def _cell(value: Any) -> str:
    """One CSV cell: numbers and booleans as orjson writes them, null empty, strings as
    they are, anything else (a list, a mapping) as compact JSON text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=_ORJSON).decode()


def _csv_rows(rows: list[dict[str, Any]], header: tuple[str, ...]) -> bytes:
    """The CSV lines of ``rows`` under ``header`` (a missing key is an empty cell)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows([_cell(row.get(k)) for k in header] for row in rows)
    return buffer.getvalue().encode()


def _union(rows: list[dict[str, Any]]) -> tuple[str, ...]:
    header: dict[str, None] = {}
    for row in rows:
        header.update(dict.fromkeys(row))
    return tuple(header)


def _csv_bytes(rows: list[dict[str, Any]], header: tuple[str, ...]) -> bytes:
    """The whole CSV of ``rows`` under ``header``."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(header)
    return buffer.getvalue().encode() + _csv_rows(rows, header)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl``; a torn last line (crash mid-write) is ignored."""
    return read_metrics_from(path, 0)[0]


def read_metrics_from(path: str | Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The rows of ``metrics.jsonl`` after byte ``offset``, and the offset just after the
    last whole row read (a torn last line is neither read nor passed)."""
    rows: list[dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return rows, offset
    end = offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        for line in fh:
            if not line.endswith(b"\n"):
                break
            if line.strip():
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    break
            end += len(line)
    return rows, end


def run_context(
    run_dir: str | Path,
    config: Any,
    *,
    resume: dict[str, Any] | None = None,
    step_key: str = "epoch",
    logger: Any = None,
    sinks: Any = (),
) -> RunContext:
    """A :class:`~sweeplab.core.context.RunContext` writing the run's local files:
    ``metrics.jsonl``/``metrics.csv`` (cut back to the checkpoint ``resume`` covers) and
    ``logs/train.log``, plus any further ``sinks``."""
    run_dir = Path(run_dir)
    metrics = LocalMetricsWriter(run_dir, step_key=step_key,
                                 truncate_at=resume["metrics"]["offset"] if resume else 0)
    try:
        train_log = TrainLog(run_dir / TRAIN_LOG, step_key=step_key)
    except BaseException:
        metrics.close()
        raise
    return RunContext(run_dir, config, metrics, train_log, sinks=sinks, logger=logger,
                      resume=resume)
