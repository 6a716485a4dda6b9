"""The agent's run directory and its registry of iterations.

::

    run_<YYYYmmdd-HHMMSS>[_<name>]/
      experiments/registry.json     goal, settings, every iteration (prompts and replies,
                                    config, validation, summary, evaluation, decision), best
      experiments/iter_<k>/         the evaluation's plots (confusion matrix, learning
                                    curve; PNG)
      src/models/iter_<k>/model.py  each candidate's source, as checked and trained
      src/models/iter_<k>/train/    its training child's work directory (the source, the
                                    child's result, stdout and stderr, the weights it
                                    returned, what the code wrote): the only place that
                                    child may write
      src/models/iter_<k>/weights/  those weights as the agent read and rewrote them
      src/models/iter_<k>/score/    its scoring child's work directory and logits
      src/models/model.py           the best candidate's source

``registry.json`` is rewritten atomically after every iteration, so an interrupted agent
loses nothing it finished. Without ``--keep``, :meth:`Registry.clean` removes the
temporary files at the end: every sandbox directory (``train/``, ``weights/``,
``score/``), and the sources and plots of the candidates other than the best. What a
user needs stays: the registry (every config, from which the deterministic assembler
rebuilds any source, and every validation, summary, evaluation and exchange with the
LLM), the best source (twice: ``model.py`` and its ``iter_<k>/model.py``, which the
registry's ``best.source`` names) and its plots.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweeplab.agent.goal import Goal
from sweeplab.agent.records import IterationRecord
from sweeplab.core.experiment import load_json, safe_name, save_json

REGISTRY = Path("experiments") / "registry.json"
KEPT_SUFFIXES = (".png", ".pdf")
"""The best candidate's plots, kept by :meth:`Registry.clean`."""


def new_run_dir(out_dir: Path, name: str | None = None) -> Path:
    """Create ``out_dir/run_<timestamp>[_name]`` (a ``-N`` suffix if it exists)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"run_{stamp}" + (f"_{safe_name(name)}" if name else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        path = out_dir / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a run directory under {out_dir}")


def _plain(value: Any) -> Any:
    """JSON-able form of records (dataclasses, pydantic models, paths)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class Registry:
    """The registry of one agent run, saved after every change."""

    def __init__(self, run_dir: Path, goal: Goal, settings: dict[str, Any]):
        self.run_dir = run_dir
        self.path = run_dir / REGISTRY
        self.data: dict[str, Any] = {
            "kind": "sweeplab-agent-run",
            "goal": _plain(goal), "goal_understood": goal.describe(),
            "settings": _plain(settings),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "state": "running", "iterations": [], "rejected": [], "best": None,
        }
        self.save()

    def model_dir(self, index: int) -> Path:
        """Where candidate ``index``'s source and sandbox files go."""
        path = self.run_dir / "src" / "models" / f"iter_{index:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def plots_dir(self, index: int) -> Path:
        path = self.run_dir / "experiments" / f"iter_{index:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, record: IterationRecord) -> None:
        """Record a finished iteration and the best so far; save."""
        entry = _plain(record)
        self.data["iterations"].append(entry)
        best = self.data["best"]
        if record.score is not None and (best is None or record.score > best["score"]):
            self.data["best"] = {"iteration": record.index, "score": record.score,
                                 "test_score": record.test_score,
                                 "source": f"src/models/iter_{record.index:03d}/model.py"}
        self.save()

    def reject(self, record: IterationRecord) -> None:
        """Record a proposal refused before any work (e.g. over the parameter budget)."""
        self.data["rejected"].append(_plain(record))
        self.save()

    def finish(self, state: str, reason: str) -> None:
        """Close the registry (done, interrupted or failed) and copy the best source."""
        self.data.update(state=state, reason=reason,
                         ended=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        best = self.data["best"]
        if best is not None and (self.run_dir / best["source"]).is_file():
            target = self.run_dir / "src" / "models" / "model.py"
            shutil.copyfile(self.run_dir / best["source"], target)
            best["final_source"] = "src/models/model.py"
        self.save()

    def clean(self) -> list[Path]:
        """Remove the temporary files (see the module docstring); the paths removed."""
        best = (self.data.get("best") or {}).get("iteration")
        removed = []
        for folder in sorted((self.run_dir / "src" / "models").glob("iter_*")) + sorted(
                (self.run_dir / "experiments").glob("iter_*")):
            if best is not None and folder.name == f"iter_{best:03d}":
                for scratch in sorted(folder.iterdir()):
                    if scratch.name != "model.py" and scratch.suffix not in KEPT_SUFFIXES:
                        _remove(scratch)
                        removed.append(scratch)
                continue
            _remove(folder)
            removed.append(folder)
        self.data["cleaned"] = True
        self.save()
        return removed

    def save(self) -> None:
        save_json(self.data, self.path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def load_registry(run_dir: Path) -> dict[str, Any]:
    """The registry of an agent run directory."""
    return load_json(Path(run_dir) / REGISTRY)


def is_agent_run(path: Path) -> bool:
    """Whether ``path`` is an agent run directory (it has ``experiments/registry.json``)."""
    return (Path(path) / REGISTRY).is_file()
