"""The local metric files every run writes: ``metrics.jsonl`` and ``metrics.csv``.

``metrics.jsonl`` is the source of truth: one JSON object per logged step, appended and
flushed line by line, so an interrupted run keeps every step it logged. ``metrics.csv``
mirrors it for spreadsheets and pandas; when a later step brings a key the CSV header
lacks, the CSV is rebuilt from the JSONL with the union of keys.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sweeplab.core.experiment import atomic_write_text


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
    """Appends metrics to ``<run_dir>/metrics.jsonl`` and ``<run_dir>/metrics.csv``."""

    def __init__(self, run_dir: str | Path, step_key: str = "epoch"):
        self.run_dir = Path(run_dir)
        self.step_key = step_key
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        self.csv_path = self.run_dir / "metrics.csv"
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115
        self._csv = open(self.csv_path, "a", encoding="utf-8", newline="")  # noqa: SIM115
        self._header: list[str] | None = None
        self._writer: csv.DictWriter | None = None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append one row ``{step_key: step, **metrics}`` to both files and flush."""
        row = {self.step_key: int(step)}
        row.update({k: _clean(v) for k, v in metrics.items()})
        self._jsonl.write(json.dumps(row, allow_nan=False) + "\n")
        self._jsonl.flush()
        if self._header is None:
            self._start_csv(list(row))
        elif not set(row) <= set(self._header):
            self._rebuild_csv()
            return
        self._writer.writerow(row)
        self._csv.flush()

    def _start_csv(self, header: list[str]) -> None:
        self._header = header
        self._writer = csv.DictWriter(self._csv, fieldnames=header, restval="")
        self._writer.writeheader()

    def _rebuild_csv(self) -> None:
        """Rewrite the CSV from the JSONL with the union of all keys seen so far."""
        self._jsonl.flush()
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
        self._header = header
        self._writer = csv.DictWriter(self._csv, fieldnames=header, restval="")

    def close(self) -> None:
        """Close both files (idempotent)."""
        for fh in (self._jsonl, self._csv):
            if not fh.closed:
                fh.close()


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
