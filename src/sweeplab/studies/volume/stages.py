"""The stage cache of a run directory: one manifest per unit of work.

A unit (``train/m100``, ``perturb/m100``, ``volume``, ...) is *fresh* when its manifest
``stages/<unit>.json`` holds the key of the inputs now asked for and every output it
lists exists. The key is a hash of the unit's inputs: the config fields it reads and
the keys of the units it reads from, so a changed training recipe re-runs training and
everything downstream, while a changed loss cutoff re-runs only what reads the cutoff.
A manifest is written after its outputs, atomically: a unit cut short is not fresh.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweeplab.core.experiment import load_json, save_json


def inputs_key(inputs: Mapping[str, Any]) -> str:
    """A short hash of a JSON-able mapping of inputs (key order does not matter)."""
    blob = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class StageCache:
    """Manifests under ``<run_dir>/stages/``; outputs are paths relative to the run."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / "stages"

    def _manifest(self, unit: str) -> Path:
        return self.root / f"{unit}.json"

    def read(self, unit: str) -> dict[str, Any] | None:
        """The unit's manifest, or None when missing or unreadable."""
        try:
            return load_json(self._manifest(unit))
        except (OSError, ValueError):
            return None

    def fresh(self, unit: str, key: str) -> bool:
        """Whether ``unit``'s outputs exist and were made from inputs with ``key``."""
        manifest = self.read(unit)
        return (
            manifest is not None
            and manifest.get("key") == key
            and all((self.run_dir / out).exists() for out in manifest.get("outputs", []))
        )

    def record(self, unit: str, key: str, outputs: Iterable[Path], seconds: float) -> None:
        """Mark ``unit`` done with ``key`` once its ``outputs`` are written."""
        rel = [str(Path(p).resolve().relative_to(self.run_dir.resolve())) for p in outputs]
        save_json(
            {"unit": unit, "key": key, "outputs": rel, "seconds": round(seconds, 3),
             "finished": time.strftime("%Y-%m-%dT%H:%M:%S")},
            self._manifest(unit),
        )

    def forget(self, unit: str) -> None:
        """Drop a unit's manifest (its outputs will be made again)."""
        self._manifest(unit).unlink(missing_ok=True)
