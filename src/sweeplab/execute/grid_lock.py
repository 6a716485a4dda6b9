"""One driver per grid folder: a lock held for the driver's lifetime.

Two ``sweeplab grid`` commands on one folder would run the same runs twice, and the
second one's preparation deletes run folders that cannot resume, while the first one's
workers write them. The driver therefore takes ``<grid>/.sweeplab/driver.lock``
(an OS file lock, via filelock) before it plans anything, and writes who holds it
(host, pid, process start time, since when, the command) to ``driver.json`` beside it.

A second driver finds the lock taken and stops with exit status 2, naming the holder.
A driver that died (``kill -9``, a crash, a reboot) holds nothing: the OS released its
lock with its process, so the next driver takes it over and says whose it was. On a
network file system shared by several hosts, file locks are only as good as the file
system's; ``driver.json`` still names the holder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from sweeplab.core.experiment import load_json, save_json
from sweeplab.core.liveness import is_alive, this_process
from sweeplab.errors import SweeplabError

LOCK_DIR = ".sweeplab"
LOCK_FILE = "driver.lock"
HOLDER_FILE = "driver.json"
log = logging.getLogger("sweeplab.grid")


class GridLockedError(SweeplabError):
    """Another live driver runs this grid folder (the CLI exits with status 2)."""

    def __init__(self, grid_dir: Path, holder: dict[str, Any]):
        self.grid_dir = grid_dir
        self.holder = holder
        who = (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since "
               f"{holder.get('since', '?')}") if holder else "another process"
        super().__init__(
            f"grid {grid_dir} is being run by {who}; wait for it to end, or stop it "
            f"(Ctrl-C or kill {holder.get('pid', 'PID')}) and resume with "
            f"sweeplab grid --resume {grid_dir}"
        )


@dataclass
class GridLock:
    """The driver lock of ``grid_dir``: ``with GridLock(dir, command):`` runs the grid.

    ``previous`` is the holder record of a driver that died holding it (taken over), or
    None.
    """

    grid_dir: Path
    command: list[str] | None = None
    previous: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        folder = Path(self.grid_dir) / LOCK_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self._holder_path = folder / HOLDER_FILE
        self._lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)

    def acquire(self) -> GridLock:
        """Take the lock or raise :class:`GridLockedError` naming its live holder."""
        try:
            self._lock.acquire()
        except Timeout:
            raise GridLockedError(Path(self.grid_dir), self._holder()) from None
        old = self._holder()
        me = this_process()
        if old and not old.get("released") and old.get("host") == me["host"] \
                and old.get("pid") != me["pid"] and is_alive(old):
            # the OS lock was free yet its holder lives: a lock file on a file system
            # without working locks; refuse rather than run beside it
            self._lock.release()
            raise GridLockedError(Path(self.grid_dir), old)
        if old and not old.get("released"):
            self.previous = old
            log.warning("taking over the grid from a driver that is gone (pid %s on %s, "
                        "since %s)", old.get("pid"), old.get("host"), old.get("since"))
        save_json({**me, "since": _now(), "command": self.command},
                  self._holder_path)
        return self

    def release(self) -> None:
        """Mark the holder record released and give up the lock (idempotent)."""
        if not self._lock.is_locked:
            return
        if self._holder_path.parent.is_dir():  # not when the grid folder was removed
            try:
                save_json({**self._holder(), "released": _now()}, self._holder_path)
            except OSError:  # a full disk must not keep the lock: the OS lock counts
                pass
        self._lock.release()

    def _holder(self) -> dict[str, Any]:
        try:
            return load_json(self._holder_path)
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> GridLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
