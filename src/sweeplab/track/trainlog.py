"""``logs/train.log``: the run's progress as timestamped lines, for ``tail -f``.

Metric rows are written at most once per ``min_interval_s`` (the newest row wins, and
the last one is always written), so a run logging every step costs almost nothing here
and the file stays readable; metrics.jsonl keeps every row. Events (resume, checkpoint,
interruption) are written as they happen::

    2026-11-22 02:00:00 epoch 100 loss=0.0123 train_acc=1 angle_svm=3.21
    2026-11-22 02:00:01 checkpoint at epoch 100 (interval)
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


class TrainLog:
    """A metric sink writing a rate-limited, human-readable training log."""

    def __init__(self, path: str | Path, step_key: str = "epoch", min_interval_s: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.step_key = step_key
        self.min_interval_s = min_interval_s
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self._pending: tuple[int, Mapping[str, Any]] | None = None
        self._last = -math.inf

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Keep the row; write it when ``min_interval_s`` has passed since the last one."""
        now = time.monotonic()
        if now - self._last >= self.min_interval_s:
            self._last = now
            self._pending = None
            self._write(f"{self.step_key} {step} " + _row(metrics))
        else:
            self._pending = (step, metrics)

    def event(self, text: str) -> None:
        """Write the newest unwritten row, then ``text``, each with a timestamp."""
        self._flush_row()
        self._write(text)

    def _flush_row(self) -> None:
        if self._pending is not None:
            step, metrics = self._pending
            self._pending = None
            self._write(f"{self.step_key} {step} " + _row(metrics))

    def _write(self, text: str) -> None:
        if not self._fh.closed:
            self._fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")

    def close(self) -> None:
        """Write the newest unwritten row and close (idempotent)."""
        if not self._fh.closed:
            self._flush_row()
            self._fh.close()


def _row(metrics: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_fmt(value)}" for key, value in metrics.items())
