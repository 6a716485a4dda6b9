"""Keep freed host memory for reuse while batches train on CPU (glibc's allocator).

A batched step on CPU allocates temporaries of B runs at once (activations, gradients,
optimizer passes: hundreds of kilobytes to megabytes each). glibc serves a request above
its mmap threshold (128 KiB at start, raised only as such blocks are freed) with fresh
pages from the kernel and gives them back when freed, and it trims the heap's free top
beyond its trim threshold, so every step paid a page fault per 4 KiB of its large
temporaries, and the zeroing of those pages: for the volume MLP (784-128-10, B = 16)
~2,000 faults a step, up to ~20% of the batched step's CPU time (8% on the 30-step runs
of ``benchmarks/bench_batched_models.py``, whose first steps grow the heap again). One
run alone stays below the threshold and never faults.

:func:`reuse_freed_memory` raises the mmap threshold to glibc's ceiling for this setting
(32 MiB on 64-bit) and the trim threshold to 1 GiB, so freed blocks stay in the heap
for the next step. :func:`release_freed_memory` (when the batches are done) hands the
heap's free top back to the kernel and puts the trim threshold back to glibc's default,
so a process that goes on (a grid's driver, a worker) does not keep a batch's memory;
the mmap threshold stays at 32 MiB (glibc has no way back to its sliding threshold).
:func:`hold_until_exit` applies the setting early in a process that may call no native
code later. Elsewhere than glibc (macOS, musl) all three do nothing.
``SWEEPLAB_MALLOC=default`` leaves the allocator as it is.
"""

from __future__ import annotations

import ctypes
import os
from functools import cache

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""glibc accepts at most HEAP_MAX_SIZE / 2 (32 MiB on 64-bit) for M_MMAP_THRESHOLD;
larger blocks are still mapped and unmapped (a few per step at most)."""
TRIM_THRESHOLD = 1024 * 1024 * 1024
"""Free memory at the heap's top kept for reuse (while batches train)."""
DEFAULT_TRIM_THRESHOLD = 128 * 1024
"""glibc's own M_TRIM_THRESHOLD (``DEFAULT_TRIM_THRESHOLD`` in malloc.c)."""

_state = {"applied": False, "held": False}


@cache
def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (has ``mallopt`` and ``malloc_trim``)."""
    if os.environ.get("SWEEPLAB_MALLOC", "").lower() == "default":
        return None
    try:
        # the symbols this process already has: no library search, which would start
        # ldconfig or a compiler and write temporary files (a sandbox refuses both)
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def reuse_freed_memory() -> bool:
    """Keep freed large blocks for reuse from now on; True if the setting is in force."""
    if _state["held"] or _state["applied"]:
        return _state["applied"]
    libc = _glibc()
    if libc is None:
        return False
    _state["applied"] = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _state["applied"]


def release_freed_memory() -> None:
    """Give the heap's free memory back to the kernel and trim as glibc does by default
    again (after a process's batches are done; not after :func:`hold_until_exit`)."""
    libc = _glibc()
    if _state["held"] or not _state["applied"] or libc is None:
        return
    libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)
    _state["applied"] = False


def hold_until_exit() -> bool:
    """Apply the setting now and keep it to the end, for a process that ends after its
    batches and may not call native code later (the agent's sandbox: its audit hook
    refuses every ``ctypes`` call once installed, and this is called before). Later
    calls of the other two then call nothing. True if applied."""
    applied = reuse_freed_memory()
    _state["held"] = True
    return applied
