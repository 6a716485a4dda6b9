"""Is the process that wrote a record still the one running?

A run's ``status.json`` and a grid's driver lock record who holds them: host, pid and the
process's start time. A pid alone is not enough: once its process is gone the kernel may
give the number to another one, and a resume would then wait forever for a run nobody
runs. :func:`is_alive` therefore compares the start time too (psutil's ``create_time``).
Only a process on this host can be checked; another host's (a Slurm node's) is trusted.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from typing import Any

import psutil

START_TOLERANCE_S = 1.0
"""Start times are compared to this tolerance (they are rounded by some platforms)."""


@cache
def _own_start() -> float:
    return psutil.Process().create_time()


def this_process() -> dict[str, Any]:
    """``{"host", "pid", "pid_started"}`` of the calling process, for a record."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_started": _start(os.getpid())}


def _start(pid: int) -> float:
    return _own_start() if pid == os.getpid() else psutil.Process(pid).create_time()


def is_alive(record: dict[str, Any]) -> bool:
    """Whether the process a record names (``host``, ``pid``, optional ``pid_started``)
    is still running on this host; True for a record of another host or without a pid."""
    if record.get("host") != socket.gethostname() or "pid" not in record:
        return True
    try:
        process = psutil.Process(int(record["pid"]))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = record.get("pid_started")
        return started is None or abs(process.create_time() - float(started)) < START_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
