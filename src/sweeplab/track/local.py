"""The local metric files every run writes: ``metrics.jsonl`` and ``metrics.csv``.

``metrics.jsonl`` is the source of truth: one JSON object per logged step. ``metrics.csv``
mirrors it for spreadsheets and pandas; when a later step brings a key the CSV header
lacks, the CSV is rebuilt from the JSONL with the union of keys.

Rows are buffered and written in batches: at most ``flush_seconds`` (default 1 s) after
they are logged, every 512 rows, and whenever the run asks for the position (before a
checkpoint), is interrupted or ends. A ``kill -9`` may thus lose the last second of rows,
never more, and never a row a checkpoint covers; ``flush_seconds=0`` writes line by line.
Batching makes a logged step cost about a microsecond: a row of floats is formatted
with a template made once per key set instead of a ``json.dumps`` per row.
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

from sweeplab.core.experiment import atomic_write_text

FLUSH_ROWS = 512
_FAST_TYPES = frozenset({float, int})


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
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._templates: dict[tuple[str, ...], tuple[str, str | None]] = {}
        self._header: list[str] | None = None
        self._writer: csv.DictWriter | None = None
        self._csv_buffer = io.StringIO()
        if truncate_at is not None:
            self._truncate(truncate_at)
        self.rows = len(read_metrics(self.jsonl_path)) if self.jsonl_path.exists() else 0
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        if self.rows and self.csv_path.stat().st_size:
            self._set_header(_csv_header(self.csv_path))
        self._last_flush = time.monotonic()

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record one row ``{step_key: step, **metrics}``; written within ``flush_seconds``."""
        self._pending.append((step, dict(metrics)))
        if (
            len(self._pending) >= FLUSH_ROWS
            or time.monotonic() - self._last_flush >= self.flush_seconds
        ):
            self.flush()

    def flush(self) -> None:
        """Write every pending row to both files and flush them to the OS."""
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        lines = []
        csv_lines = []
        rebuild = False
        for step, metrics in pending:
            line, csv_line, new_keys = self._format(int(step), metrics)
            lines.append(line)
            if new_keys:
                rebuild = True
            elif not rebuild:
                csv_lines.append(csv_line)
        self._jsonl.write("".join(lines))
        self._jsonl.flush()
        self.rows += len(lines)
        if rebuild:
            self._rebuild_csv()
        else:
            self._csv.write("".join(csv_lines))
            self._csv.flush()

    def position(self) -> dict[str, int]:
        """Flush, then where metrics.jsonl ends: ``{"offset": bytes, "rows": lines}``."""
        self.flush()
        return {"offset": self._jsonl.tell(), "rows": self.rows}

    def _format(self, step: int, metrics: dict[str, Any]) -> tuple[str, str, bool]:
        """The JSON line and CSV line of a row, and whether it brings new CSV columns."""
        keys = tuple(metrics)
        template = self._templates.get(keys)
        if template is None:
            template = self._templates[keys] = self._make_templates(keys)
        values = tuple(metrics.values())
        json_template, csv_template = template
        if self._header is None:
            self._start_csv([self.step_key, *keys])
            json_template, csv_template = self._templates[keys] = self._make_templates(keys)
        if _FAST_TYPES.issuperset(map(type, values)) and _finite_sum(values):
            texts = (step, *map(repr, values))  # each float formatted once, for both files
            line = json_template % texts
            if csv_template is not None:
                return line, csv_template % texts, False
        else:
            row = {self.step_key: step, **{k: _clean(v) for k, v in metrics.items()}}
            line = json.dumps(row, allow_nan=False) + "\n"
        if not set(keys) <= set(self._header):
            return line, "", True
        return line, self._csv_row(step, metrics), False

    def _make_templates(self, keys: tuple[str, ...]) -> tuple[str, str | None]:
        """printf templates of a JSON line and (if the columns match the header) a CSV line."""

        def field(key: str, spec: str) -> str:
            return json.dumps(key).replace("%", "%%") + ": " + spec

        fields = [field(self.step_key, "%d"), *(field(k, "%s") for k in keys)]
        json_template = "{" + ", ".join(fields) + "}\n"
        matches = self._header == [self.step_key, *keys]
        csv_template = ",".join(["%d", *(["%s"] * len(keys))]) + "\r\n" if matches else None
        return json_template, csv_template

    def _csv_row(self, step: int, metrics: dict[str, Any]) -> str:
        """A CSV line aligned to the header, through the csv module (quoting, blanks)."""
        row = {self.step_key: step, **{k: _clean(v) for k, v in metrics.items()}}
        self._csv_buffer.seek(0)
        self._csv_buffer.truncate()
        self._writer.writerow(row)
        return self._csv_buffer.getvalue()

    def _set_header(self, header: list[str]) -> None:
        self._header = header
        self._writer = csv.DictWriter(self._csv_buffer, fieldnames=header, restval="")
        self._templates.clear()

    def _start_csv(self, header: list[str]) -> None:
        self._set_header(header)
        if self.csv_path.stat().st_size == 0:
            self._writer.writeheader()
            self._csv.write(self._csv_buffer.getvalue())

    def _rebuild_csv(self) -> None:
        """Rewrite the CSV from the JSONL with the union of all keys seen so far."""
        rows = read_metrics(self.jsonl_path)
        header: list[str] = []
        for r in rows:
            header.extend(k for k in r if k not in header)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
        self._csv.close()
        atomic_write_text(self.csv_path, buf.getvalue())
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._set_header(header)

    def _truncate(self, offset: int) -> None:
        """Keep the first ``offset`` bytes of metrics.jsonl; rebuild metrics.csv from it."""
        if self.jsonl_path.exists():
            with open(self.jsonl_path, "r+b") as fh:
                fh.truncate(offset)
        else:
            self.jsonl_path.write_bytes(b"")
        rows = read_metrics(self.jsonl_path)
        header: list[str] = []
        for r in rows:
            header.extend(k for k in r if k not in header)
        buf = io.StringIO()
        if header:
            writer = csv.DictWriter(buf, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
        atomic_write_text(self.csv_path, buf.getvalue())

    def close(self) -> None:
        """Write what is pending and close both files (idempotent)."""
        if not self._jsonl.closed:
            self.flush()
        for fh in (self._jsonl, self._csv):
            if not fh.closed:
                fh.close()


def _finite_sum(values: tuple[Any, ...]) -> bool:
    """True when every value is finite (one sum instead of a check per value)."""
    try:
        return math.isfinite(sum(values))
    except OverflowError:
        return False


def _csv_header(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return next(csv.reader(fh), [])


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl``; a torn last line (crash mid-write) is ignored."""
    rows: list[dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows
