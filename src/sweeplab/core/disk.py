"""A full disk: recognising it, naming the file it stopped, recording a status anyway.

A write that finds no space left (``ENOSPC``, or ``EDQUOT`` past a quota) is not a
failure of the run: nothing in the run is wrong, and once space is freed a resume must
redo it. So a run that meets a full disk is *interrupted*, and work stops, since every
later write would meet it too.

Marking a run interrupted needs a write of its own, to ``status.json``, on that full
disk. An atomic write (a new temporary file) needs a new block and fails there; but the
status is a few hundred bytes, and the file already holds a block of its own since the
run's start. :func:`sweeplab.core.rundir.save_small_json` therefore falls back to
rewriting the file over its old bytes, in place (:func:`rewrite_in_place`), when the new
content fits in the space the file already holds: file systems that overwrite in place
(ext4 and tmpfs among them) need no new block. A rewrite in place is not atomic, but a
torn status reads as no status, and a run without one runs again: the safe direction.
Where even that fails (a copy-on-write file system, a status never written), the status
still says ``running`` and the process that wrote it is gone: liveness
(:meth:`sweeplab.core.rundir.RunStatus.stale`) tells a resume so, and it runs again all
the same.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sweeplab.errors import SweeplabError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
"""No space left on the device; over the disk quota."""


class DiskFullError(SweeplabError):
    """Work stopped because the disk holding ``path`` is full; nothing is lost.

    ``interrupted`` counts the runs stopped and ``resume`` is the command that finishes
    them once space is freed (both optional: an executor knows the first, only the
    command line the second).
    """

    def __init__(self, path: str, interrupted: int | None = None, resume: str | None = None):
        self.path = path
        self.interrupted = interrupted
        self.resume = resume
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"disk full writing {self.path}"
        if self.interrupted is not None:
            runs = "run" if self.interrupted == 1 else "runs"
            text += f"; {self.interrupted} {runs} interrupted, nothing lost"
        if self.resume:
            text += f"; free space and run {self.resume}"
        return text


def is_disk_full(exc: BaseException) -> bool:
    """True for an ``OSError`` of a full disk or an exhausted quota."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def disk_full_file(exc: BaseException) -> str | None:
    """The file a full disk stopped, if ``exc`` (or an exception it arose from) is one.

    ``""`` when the disk is full but no file was named; ``None`` when ``exc`` is not a
    full disk at all. A :class:`DiskFullError` names its own path.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DiskFullError):
            return current.path
        if is_disk_full(current):
            return str(current.filename or "")
        current = current.__cause__ or current.__context__
    return None


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """A full disk met inside the block names ``path`` (a write to an open file, or to a
    temporary sibling of ``path``, names no file or the wrong one)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL_ERRNOS:
            exc.filename = str(path)
        raise


def rewrite_in_place(path: str | Path, payload: bytes) -> bool:
    """Write ``payload`` over ``path``'s old bytes, only if it fits in the file's blocks.

    Returns False, leaving the file untouched, when ``path`` is missing or ``payload``
    is larger than the space it holds; raises ``OSError`` if the write itself fails.
    """
    try:
        fd = os.open(path, os.O_WRONLY)  # no O_TRUNC: the file keeps its blocks
    except FileNotFoundError:
        return False
    try:
        stat = os.fstat(fd)
        if len(payload) > max(stat.st_blocks * 512, stat.st_size):
            return False
        view = memoryview(payload)
        offset = 0
        while offset < len(payload):
            offset += os.pwrite(fd, view[offset:], offset)
        os.ftruncate(fd, len(payload))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True
