"""Reading a run's logs as they grow: the last lines, the new lines, two logs merged.

A run writes ``logs/run.log`` (its life: start, warnings, the traceback of a failure)
and may write ``logs/train.log`` (timestamped metric lines). Both start their lines with
a timestamp (``2026-01-02 10:11:12,345 ...``); a line without one (a traceback's body)
belongs to the line before it. Two logs are merged by those timestamps, each record
kept whole, so the progress lines and the warnings read in the order they happened.
"""

from __future__ import annotations

import heapq
import os
import re
from pathlib import Path

LOG_FILES = {"train": Path("logs") / "train.log", "run": Path("logs") / "run.log"}
"""The logs a run may have, by the name ``sweeplab logs --file`` takes."""

_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:[.,](\d+))?")

Keyed = tuple[str, str]
"""``(timestamp key, line)``: the key of the record the line belongs to."""


def timestamp_key(line: str) -> str | None:
    """A sortable key of the timestamp a log line starts with, or ``None``."""
    match = _TIMESTAMP.match(line)
    if match is None:
        return None
    date, time, fraction = match.groups()
    return f"{date} {time}.{(fraction or '').ljust(6, '0')[:6]}"


class LogTail:
    """Follows one log file: its last lines, then each new complete line.

    A missing file reads as empty until it appears; a file that shrank or was replaced
    (the run was restarted in a fresh directory) is read again from its start.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.inode: int | None = None
        self.key = ""
        self.buffer = b""

    def _keyed(self, raw: list[bytes]) -> list[Keyed]:
        out = []
        for chunk in raw:
            line = chunk.decode("utf-8", errors="replace").rstrip("\r")
            key = timestamp_key(line)
            if key is not None:
                self.key = key
            out.append((self.key, line))
        return out

    def start(self, lines: int, block: int = 1 << 16) -> list[Keyed]:
        """The last ``lines`` complete lines; later reads go on after them."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return []
        with fh:
            self.inode = os.fstat(fh.fileno()).st_ino
            pos = fh.seek(0, os.SEEK_END)
            data = b""
            while pos > 0 and data.count(b"\n") <= lines:
                step = min(block, pos)
                pos -= step
                fh.seek(pos)
                data = fh.read(step) + data
        complete = data.rfind(b"\n") + 1
        self.offset = pos + complete
        raw = data[:complete].split(b"\n")[:-1]
        return self._keyed(raw[-lines:] if lines > 0 else [])

    def read(self, final: bool = False) -> list[Keyed]:
        """The lines completed since the last read (``final``: the unfinished one too)."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return []
        with fh:
            st = os.fstat(fh.fileno())
            if (self.inode is not None and st.st_ino != self.inode) or st.st_size < self.offset:
                self.offset, self.buffer, self.key = 0, b"", ""
            self.inode = st.st_ino
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        self.buffer += chunk
        complete = self.buffer.rfind(b"\n") + 1
        raw = self.buffer[:complete].split(b"\n")[:-1]
        self.buffer = self.buffer[complete:]
        if final and self.buffer:
            raw.append(self.buffer)
            self.buffer = b""
        return self._keyed(raw)


def merge(streams: list[list[Keyed]]) -> list[str]:
    """The lines of several logs in timestamp order, each record whole.

    Each stream is already in time order; on equal timestamps the earlier stream's
    lines come first.
    """
    if len(streams) == 1:
        return [line for _, line in streams[0]]
    return [line for _, line in heapq.merge(*streams, key=lambda kv: kv[0])]
