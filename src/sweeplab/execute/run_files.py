"""Is a run directory sound, and which of its files may go: checks, stale runs, cleaning.

:func:`check_run` lists what is wrong with one run directory: a checkpoint that does not
load, belongs to another config or covers more metrics than the run has; a finished
run missing a file or with a corrupt one; a run that says ``running`` while its process
is gone. :func:`cleanable` picks the bulky files (checkpoints, dataset copies) that can
be deleted without losing anything a resume or the analysis needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweeplab.core.checkpoint import CheckpointError, checkpoint_files, load_checkpoint
from sweeplab.core.rundir import RunStatus

DONE_FILES = ("config.yaml", "status.json", "final.json", "metrics.jsonl", "provenance.json")
"""Files every finished run has."""

DATASET_FILE = "dataset.npz"


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, reason)`` when the file is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (OSError, ValueError) as exc:
        return None, f"{path.name} is corrupt ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def is_stale(status: dict[str, Any]) -> bool:
    """A ``running`` status (as read from status.json) whose process is gone."""
    return RunStatus.from_dict(status).stale()


def jsonl_problem(path: Path) -> str | None:
    """What is wrong with a ``metrics.jsonl`` (a torn or bad line), or ``None``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"{path.name} is missing"
    except OSError as exc:
        return f"{path.name} is unreadable ({_first_line(exc)})"
    lines = data.split(b"\n")
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            json.loads(line)
        except ValueError:
            what = "a torn last line" if number == last else "a corrupt line"
            return f"{path.name} has {what} (line {number})"
    if lines[-1].strip():
        return f"{path.name} has a torn last line (line {last}: no newline at its end)"
    return None


def _config_hash(run_dir: Path) -> str | None:
    try:
        header = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return header.get("config_hash") if isinstance(header, dict) else None


def checkpoint_problems(run_dir: Path) -> list[str]:
    """Problems of each checkpoint under ``run_dir/checkpoints/`` (empty: all sound)."""
    problems = []
    files = checkpoint_files(run_dir)
    config_hash = _config_hash(run_dir) if files else None
    for path in files:
        rel = path.relative_to(run_dir).as_posix()
        try:
            checkpoint = load_checkpoint(path)
        except CheckpointError as exc:
            problems.append(str(exc).replace(f"checkpoint {path}", rel))
            continue
        if config_hash is None:
            problems.append(f"{rel}: cannot be verified: config.yaml is missing or corrupt")
        elif checkpoint.get("config_hash") != config_hash:
            problems.append(f"{rel}: config hash {checkpoint.get('config_hash')} does not "
                            f"match config.yaml's {config_hash}")
        offset = int((checkpoint.get("metrics") or {}).get("offset", 0))
        try:
            size = (run_dir / "metrics.jsonl").stat().st_size
        except OSError:
            size = 0
        if offset > size:
            problems.append(f"{rel}: covers {offset} bytes of metrics.jsonl but the file "
                            f"has {size}")
    return problems


def check_run(run_dir: Path) -> list[str]:
    """Everything wrong with one run directory (empty: nothing).

    Checkpoints must load, match the run's config hash and lie within metrics.jsonl; a
    ``done`` run must hold :data:`DONE_FILES`, each readable, with no torn metrics line;
    a ``running`` run's process must be alive (else it is stale).
    """
    problems = []
    status, reason = read_json(run_dir / "status.json")
    if reason:
        problems.append(reason)
    elif not isinstance(status, dict):
        problems.append("status.json is corrupt (not a JSON object)")
        status = None
    status = status or {}
    state = status.get("state")
    if state == "done":
        checks = {"config.yaml": _yaml_problem, "metrics.jsonl": jsonl_problem}
        for name in DONE_FILES:
            if name != "status.json":
                check = checks.get(name, lambda path: read_json(path)[1])
                if problem := check(run_dir / name):
                    problems.append(problem)
        config_hash = _config_hash(run_dir)
        if config_hash and status.get("config_hash") not in (None, config_hash):
            problems.append(f"status.json's config hash {status['config_hash']} does not "
                            f"match config.yaml's {config_hash}")
    elif is_stale(status):
        problems.append(f"stale: status.json says running but process {status.get('pid')} "
                        f"on {status.get('host')} is gone (a resume re-runs it)")
    problems.extend(checkpoint_problems(run_dir))
    return problems


def _yaml_problem(path: Path) -> str | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, yaml.YAMLError) as exc:
        return f"{path.name} is corrupt ({_first_line(exc)})"
    return None if isinstance(data, dict) else f"{path.name} is corrupt (not a mapping)"


# --------------------------------------------------------------------------- cleaning


@dataclass(frozen=True)
class Cleanable:
    """A file ``clean`` may delete; ``keep`` (``running``, ``unfinished``) if it stays."""

    path: Path
    size: int
    keep: str | None = None


def run_state(run_dir: Path) -> str:
    """The run's state, with ``stale`` for a ``running`` run whose process is gone."""
    status, _ = read_json(run_dir / "status.json")
    status = status if isinstance(status, dict) else {}
    if is_stale(status):
        return "stale"
    return str(status.get("state", "pending"))


def cleanable(
    run_dirs: list[Path], checkpoints: bool, datasets: bool, include_unfinished: bool
) -> list[Cleanable]:
    """The checkpoint and/or dataset files of ``run_dirs``, each marked kept or not.

    Only a finished (``done``) run's files go by default: an unfinished run's checkpoint
    is what resumes it. ``include_unfinished`` adds failed, interrupted and stale runs'
    files; a run whose process is still running keeps its files always.
    """
    out = []
    for run_dir in run_dirs:
        files = list(checkpoint_files(run_dir)) if checkpoints else []
        if datasets and (run_dir / DATASET_FILE).is_file():
            files.append(run_dir / DATASET_FILE)
        if not files:
            continue
        state = run_state(run_dir)
        keep = None
        if state == "running":
            keep = "running"
        elif state != "done" and not include_unfinished:
            keep = "unfinished"
        for path in files:
            try:
                size = path.stat().st_size
            except OSError:
                continue
            out.append(Cleanable(path, size, keep))
    return out


def human_size(n: float) -> str:
    """Bytes in decimal units: ``512 B``, ``12.3 MB``, ``1.5 GB``."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
