"""The metric rows of a command run's earlier attempts, kept where a resumed script resumes.

A command study's program may keep its own checkpoint in its working directory (the run
directory, which a resume keeps) and pick up from it when it runs again. Its new attempt
then reports only the steps it has left, while the run's ``metrics.jsonl`` starts over
with every attempt (a command run has no sweeplab checkpoint). So the rows each attempt
logs are also kept in ``logs/command_rows.jsonl``, and a new attempt keeps the rows of
the earlier ones up to the first step it reports itself:

- a script that resumes at step 300 keeps steps 0-299 of before, then its own;
- a script that starts over (first step 0) replaces them all;
- a script that reports nothing this time (it found its work done) keeps them all.

The file is rewritten atomically once the kept rows are known and appended to line by
line after that, so a crash at any point leaves the rows of some attempt, never a mix
that loses steps. A line cut short by a crash is skipped when read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from sweeplab.core.rundir import atomic_write_text

ROWS_FILE = "logs/command_rows.jsonl"
"""Every metric row a command run logged, over all its attempts (``{"step": s, ...}``)."""

Row = tuple[int, dict[str, Any]]


class EarlierRows:
    """The rows of the earlier attempts of the run in ``run_dir``, and the record of this one."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ROWS_FILE
        self.rows = read_rows(self.path)
        self._settled = False
        self._out: IO[str] | None = None

    def before(self, step: int) -> list[Row]:
        """The earlier rows to log before this attempt's first row (at ``step``), once.

        They are those of a lower step; the record then holds them and this attempt's.
        """
        if self._settled:
            return []
        self._settled = True
        kept = [(s, m) for s, m in self.rows if s < step]
        atomic_write_text(self.path, "".join(_line(s, m) for s, m in kept))
        self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        return kept

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        """Record a row this attempt logged (after :meth:`before`)."""
        if self._out is not None:
            self._out.write(_line(step, metrics))
            self._out.flush()

    def rest(self) -> list[Row]:
        """Every earlier row, when this attempt reported none (its record is unchanged)."""
        if self._settled:
            return []
        self._settled = True
        return list(self.rows)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def read_rows(path: Path) -> list[Row]:
    """The rows of a record file (none when it is absent); unreadable lines skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        step = obj.pop("step", None) if isinstance(obj, dict) else None
        if isinstance(step, int) and not isinstance(step, bool):
            rows.append((step, obj))
    return rows


def _line(step: int, metrics: dict[str, Any]) -> str:
    return json.dumps({"step": step, **metrics}) + "\n"  # NaN and inf as Python's json reads them
