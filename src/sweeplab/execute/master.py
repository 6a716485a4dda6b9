"""``master.csv``: one row per run of a grid, kept current as runs finish.

Each row is read from the run's own directory (status.json, final.json), which stays the
source of truth, so the table can always be rebuilt and never holds a run twice. Columns:
``run``, ``state`` (pending, running, done, failed or interrupted), ``duration_s``,
``error``, ``config_hash``, the varying parameters, the other parameters, then every
final metric as ``final.<name>``.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from sweeplab.core.disk import is_disk_full
from sweeplab.core.rundir import FINAL_FILE, atomic_write_text, load_json, read_status
from sweeplab.execute.job import Job

MASTER_FILE = "master.csv"
LEAD_COLUMNS = ["run", "state", "duration_s", "error", "config_hash"]


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return "" if value is None else value


def run_row(job: Job, varying: list[str]) -> dict[str, Any]:
    """The master row of one job, read from its run directory (pending if absent)."""
    run_dir = Path(job.run_dir)
    status = read_status(run_dir)
    state = status.shown
    if state == "done" and status.config_hash != job.config_hash:
        state = "pending"
    row: dict[str, Any] = {
        "run": job.name,
        "state": state,
        "duration_s": status.get("duration_s", ""),
        "error": status.get("error", ""),
        "config_hash": job.config_hash,
    }
    for key in varying + [k for k in job.config if k not in varying]:
        row[key] = _cell(job.config[key])
    if state == "done":
        try:
            final = load_json(run_dir / FINAL_FILE)
        except (OSError, ValueError):
            final = {}
        for key, value in final.items():
            row[f"final.{key}"] = _cell(value)
    return row


class MasterTable:
    """The rows of a grid's master.csv, rewritten atomically (at most every ``interval`` s)."""

    def __init__(self, grid_dir: Path, jobs: list[Job], varying: list[str], interval: float = 0.5):
        self.path = Path(grid_dir) / MASTER_FILE
        self.jobs = {job.name: job for job in jobs}
        self.varying = varying
        self.interval = interval
        self.rows: dict[str, dict[str, Any]] = {job.name: run_row(job, varying) for job in jobs}
        self._last_write = 0.0

    def update(self, job: Job, running: bool = False) -> None:
        """Re-read ``job``'s row from its directory (``running`` marks a just-started run)."""
        row = run_row(job, self.varying)
        if running and row["state"] == "pending":
            row["state"] = "running"
        self.rows[job.name] = row
        self.write()

    def write(self, force: bool = False) -> None:
        """Rewrite master.csv (throttled unless ``force``).

        On a full disk the old table stays: it is derived from the run directories, and
        the next write (a resume's first) brings it up to date.
        """
        now = time.monotonic()
        if not force and now - self._last_write < self.interval:
            return
        self._last_write = now
        header: list[str] = list(LEAD_COLUMNS)
        finals: list[str] = []
        for row in self.rows.values():
            for key in row:
                if key.startswith("final."):
                    if key not in finals:
                        finals.append(key)
                elif key not in header:
                    header.append(key)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header + finals, restval="")
        writer.writeheader()
        writer.writerows(self.rows.values())
        try:
            atomic_write_text(self.path, buf.getvalue())
        except OSError as exc:
            if not is_disk_full(exc):
                raise

    def counts(self) -> dict[str, int]:
        """Number of runs in each state."""
        out: dict[str, int] = {}
        for row in self.rows.values():
            out[row["state"]] = out.get(row["state"], 0) + 1
        return out
