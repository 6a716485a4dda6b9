"""sweeplab: typed, parallel, resumable ML research experiments.

Public API of the foundation: run directories and files (``make_experiment_dir``,
``save_json``, ``save_yaml``, ``set_seeds``), study registration (``register_study``,
``RunContext``, ``StudyConfig``, ``resolve_study``), grids from Python (``run_grid``,
``make_executor``, ``GridResult``), a script's own command line (``main``), metrics from
any code (``log``, ``final``) and the errors.

Names are imported when first used, so ``import sweeplab`` in a script that only calls
``sweeplab.log`` costs nothing (no pydantic, NumPy or torch).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "ConfigError": "sweeplab.errors",
    "SweeplabError": "sweeplab.errors",
    "StudyConfig": "sweeplab.core.config",
    "RunContext": "sweeplab.core.context",
    "make_experiment_dir": "sweeplab.core.experiment",
    "save_json": "sweeplab.core.experiment",
    "save_yaml": "sweeplab.core.experiment",
    "set_seeds": "sweeplab.core.experiment",
    "get_study": "sweeplab.core.registry",
    "register_study": "sweeplab.core.registry",
    "resolve_study": "sweeplab.core.registry",
    "run_grid": "sweeplab.execute.driver",
    "make_executor": "sweeplab.execute.driver",
    "GridResult": "sweeplab.execute.driver",
    "main": "sweeplab.cli.script",
    "log": "sweeplab.protocol",
    "final": "sweeplab.protocol",
}
"""Public name -> the module defining it."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sweeplab' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
