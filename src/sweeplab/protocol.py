"""How any program reports metrics to sweeplab, and the tiny helper that does it.

A program that sweeplab runs as a command study (an unchanged script, one run per grid
point) reports its metrics in either of two ways, both JSON objects, one per line:

- printed after a marker at the start of a line of stdout (or stderr):
  ``SWEEPLAB_METRICS {"step": 3, "loss": 0.12}``; every other line is left alone (it
  goes to the run's ``logs/stdout.log`` or ``logs/stderr.log``);
- appended to the file named by the environment variable ``SWEEPLAB_METRICS``.

A row's ``step`` (an integer) is its step; a row without one takes the next step after
the last. Every other value must be a number (or a boolean). The run's final metrics are
the last value logged of each metric, updated by an optional final line:
``SWEEPLAB_FINAL {"test_acc": 0.93}`` on stdout, or ``{"final": {...}}`` in the file.

:func:`log` and :func:`final` write that file, so a Python script needs no marker of
its own::

    import sweeplab
    sweeplab.log(step, loss=loss, acc=acc)

Run by sweeplab, they write to ``SWEEPLAB_METRICS``; inside a sweeplab run in this very
process (a study function that takes only its config), they log to the run's context;
anywhere else they do nothing and print nothing, so the script runs unchanged without
sweeplab. This module imports only the standard library, so ``sweeplab.log`` costs
nothing to import.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

METRICS_MARKER = "SWEEPLAB_METRICS"
"""Prefix of a metrics line on stdout, and the variable naming the metrics file."""
FINAL_MARKER = "SWEEPLAB_FINAL"
"""Prefix of the final-metrics line on stdout."""
RUN_DIR_ENV = "SWEEPLAB_RUN_DIR"
"""The variable naming the run's directory (the program's working directory too)."""
STEP_KEY = "step"
FINAL_KEY = "final"

_LOCK = threading.Lock()
_FILE: dict[str, Any] = {"path": None, "handle": None}
_CONTEXT: list[Any] = []
"""Receivers (``log(step, **m)``, ``final(**m)``) of the runs in this process, innermost
last."""


def log(step: int, **metrics: float) -> None:
    """Record ``metrics`` (numbers) at ``step`` for the sweeplab run this program is part of.

    A no-op, silent, outside sweeplab.
    """
    if _CONTEXT:
        _CONTEXT[-1].log(step, **metrics)
        return
    _write({STEP_KEY: step, **metrics})


def final(**metrics: float) -> None:
    """Record final metrics of the run (they take precedence over the last logged values)."""
    if _CONTEXT:
        _CONTEXT[-1].final(**metrics)
        return
    _write({FINAL_KEY: metrics})


def numeric(metrics: Mapping[str, Any], complain: Callable[[str], None]) -> dict[str, Any]:
    """The values of ``metrics`` that are numbers (booleans too, ``None`` as NaN, NumPy
    and 0-d torch scalars as Python numbers); each other one is said to ``complain``
    (``"loss='high' is not a number"``) and left out."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) and value is not None:
            value = _number(value)
        if isinstance(value, (int, float)):
            out[str(key)] = value
        elif value is None:
            out[str(key)] = math.nan
        else:
            complain(f"{key}={metrics[key]!r} is not a number")
    return out


@contextmanager
def current_context(receiver: Any) -> Iterator[None]:
    """Route :func:`log` and :func:`final` to ``receiver`` for the block: an object with
    ``log(step, **metrics)`` and ``final(**metrics)`` (a run of this process)."""
    _CONTEXT.append(receiver)
    try:
        yield
    finally:
        _CONTEXT.remove(receiver)


def _write(row: dict[str, Any]) -> None:
    path = os.environ.get(METRICS_MARKER)
    if not path:
        return
    line = json.dumps(row, default=_number) + "\n"
    with _LOCK:
        if _FILE["path"] != path:
            if _FILE["handle"] is not None:
                _FILE["handle"].close()
            _FILE.update(path=path, handle=open(path, "a", encoding="utf-8"))  # noqa: SIM115
        handle = _FILE["handle"]
        handle.write(line)
        handle.flush()


def _number(value: Any) -> Any:
    """NumPy scalars and 0-d tensors as Python numbers (``.item()``); else their text."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)
