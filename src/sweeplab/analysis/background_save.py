"""Saving figures in forked children while the caller draws the next one.

Writing a figure costs far more than drawing its artists: the paper-style PNG (200 dpi)
and the PDF with its fonts embedded as TrueType (a fontTools subset per font, per file)
were ~3.7 s of the ~5.5 s ``sweeplab analyze`` took on a 4-run grid (docs/speed.md).
Inside :func:`saving_in_background`, :func:`save_in_background` forks a child that holds
a copy of the finished figure, writes its files and exits; the parent closes its copy
and goes on drawing, with at most one child per core beyond the parent's own. Leaving
the context waits for every child and raises :class:`FigureSaveError` naming each
figure that could not be written.

Each file is written to a temporary name and renamed, so an interrupted analysis
(Ctrl-C reaches the children too: they share the terminal's process group) leaves no
half-written figure. Where forking is not safe or not useful (not Linux: macOS's system
libraries are not fork-safe; one core; other Python threads running, as in a notebook's
kernel) figures are saved in place, as outside the context.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sweeplab.errors import SweeplabError


class FigureSaveError(SweeplabError):
    """One or more figures saved in the background could not be written."""


@dataclass
class _Pool:
    limit: int
    running: list[tuple[int, list[Path], Path]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


_active: list[_Pool] = []


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def saving_in_background(children: int | None = None) -> Iterator[bool]:
    """Context in which :func:`save_in_background` forks; yields whether it will.

    ``children``: most figures written at once (default: the usable cores).
    """
    limit = usable_cores() if children is None else children
    forking = (sys.platform.startswith("linux") and limit >= 1 and usable_cores() > 1
               and threading.active_count() == 1)
    if not forking:
        yield False
        return
    _warm_up()
    pool = _Pool(limit)
    _active.append(pool)
    try:
        yield True
    finally:
        _active.remove(pool)
        while pool.running:
            _reap(pool, *pool.running.pop(0))
        gc.unfreeze()
    if pool.failures:
        raise FigureSaveError("figures not written: " + "; ".join(pool.failures))


def _warm_up() -> None:
    """Import the writers and load the fonts in the parent, once: a child's work is lost
    when it exits, so whatever the first save sets up would otherwise be redone by
    every child (the PDF backend, fontTools, the parsed fonts)."""
    import io

    import matplotlib.pyplot as plt

    from sweeplab.analysis.style import new_figure

    fig, ax = new_figure()
    ax.set_title("warm-up $x^2$")
    ax.plot([0, 1], [0, 1], label="a")
    ax.legend()
    for fmt in ("png", "pdf"):
        fig.savefig(io.BytesIO(), format=fmt)
    plt.close(fig)


def save_in_background(write: Callable[[], None], paths: list[Path]) -> bool:
    """Run ``write()`` (which writes ``paths``) in a forked child; False when no
    :func:`saving_in_background` context forks here, and the caller must write itself."""
    if not _active:
        return False
    pool = _active[-1]
    while len(pool.running) >= pool.limit:
        _reap(pool, *pool.running.pop(0))
    error_file = paths[0].with_name(f".{paths[0].name}.error")
    gc.freeze()  # the parent's objects out of the child's collections: fewer pages copied
    pid = os.fork()
    if pid == 0:  # the child: write, report, and leave without the parent's exit handlers
        code = 0
        try:
            write()
        except BaseException:  # noqa: BLE001 - every failure is reported to the parent
            code = 1
            with contextlib.suppress(BaseException):
                error_file.write_text(traceback.format_exc(limit=4))
        os._exit(code)
    pool.running.append((pid, paths, error_file))
    return True


def _reap(pool: _Pool, pid: int, paths: list[Path], error_file: Path) -> None:
    """Wait for child ``pid``; record a failure naming its figure."""
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0 and all(p.is_file() for p in paths):
        return
    reason = "killed" if os.WIFSIGNALED(status) else "failed"
    if error_file.is_file():
        lines = error_file.read_text().strip().splitlines()
        reason = lines[-1] if lines else reason
        error_file.unlink(missing_ok=True)
    pool.failures.append(f"{paths[0].with_suffix('')} ({reason})")
