"""Start sweeplab commands in process groups of their own, and never leave one behind.

A grid driver's worker processes outlive a driver that is killed, or that a test
abandons on a failed assertion or a timeout; left running, they take the cores from
every later test. Each command here starts a new session (its own process group), and
the group is killed when the test is done with it, whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


def sweeplab_command(*args: str) -> list[str]:
    """``python -m sweeplab ARGS`` with this interpreter."""
    return [sys.executable, "-m", "sweeplab", *args]


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group led by ``proc`` (its workers included), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


@contextmanager
def started(cmd: list[str], **popen_kwargs) -> Iterator[subprocess.Popen]:
    """``Popen(cmd)`` in a new session; its whole group is killed on leaving the block."""
    proc = subprocess.Popen(cmd, start_new_session=True, **popen_kwargs)
    try:
        yield proc
    finally:
        kill_group(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def run_group(cmd: list[str], timeout: float = 300.0, **popen_kwargs
              ) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)`` in a new session.

    Past ``timeout`` the whole group is killed and :class:`subprocess.TimeoutExpired`
    raised; on a normal end, workers still alive (there should be none) are killed too.
    """
    popen_kwargs.setdefault("text", True)
    with started(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen_kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:  # a process that left the group holds a pipe
                out, err = "", ""
            raise subprocess.TimeoutExpired(cmd, timeout, output=out, stderr=err) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
