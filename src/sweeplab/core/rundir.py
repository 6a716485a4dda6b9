"""The run directory: its layout, its status, and every file written into it.

One module owns a run directory, so every part of sweeplab (the executors, the CLI, a
study's pipeline) reads and writes it the same way::

    config.yaml       the resolved config, its hash, the command line (write_run_header)
    status.json       RunStatus: pending/running/done/failed, times, process, error
    provenance.json   versions, host, git commit, seed
    metrics.jsonl     one row per logged step (the source of truth), metrics.csv from it
    final.json        the final metrics
    figs/ tables/ logs/run.log logs/train.log checkpoints/last.pt

Files are the source of truth, so every whole-file write here is atomic: the content
goes to a temporary file in the same folder, is flushed and fsynced, and replaces the
target with :func:`os.replace`. A crash leaves either the old file or the new one, never
half. JSON, YAML, torch objects, ``.npz`` arrays, tables (CSV) and figures all go through
:func:`atomic_write_bytes`. A full disk names the file it stopped
(:mod:`sweeplab.core.disk`).

A run's status is typed (:class:`RunStatus`): whether it is finished (:func:`is_finished`),
whether the process that says it runs is alive (:meth:`RunStatus.stale`, through
:mod:`sweeplab.core.liveness`), and whether its checkpoint can resume it
(:func:`can_resume`) are decided here, once.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sweeplab.core.disk import is_disk_full, naming, rewrite_in_place
from sweeplab.core.liveness import is_alive, this_process

CONFIG_FILE = "config.yaml"
STATUS_FILE = "status.json"
FINAL_FILE = "final.json"
PROVENANCE_FILE = "provenance.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
RUN_LOG = "logs/run.log"
TRAIN_LOG = "logs/train.log"
RUN_SUBDIRS = ("figs", "tables", "logs")
"""Sub-folders every run directory has."""
OUTPUTS = (METRICS_JSONL, METRICS_CSV, FINAL_FILE, TRAIN_LOG)
"""Files a run starting over (no usable checkpoint) must not inherit."""
STATES = ("pending", "running", "done", "failed")
"""What ``status.json`` may say; a failed run stopped by a signal or a full disk is
``interrupted`` besides (:attr:`RunStatus.shown`)."""


# --------------------------------------------------------------------------- atomic writes


def _file_mode() -> int:
    """Mode of a new file under this process's umask (mkstemp would give 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same folder, fsync,
    os.replace). A full disk raises the ``OSError`` naming ``path`` (not the temp file)."""
    path = Path(path)
    with naming(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, paths, tuples and sets into plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None if np.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def save_json(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` as indented JSON, atomically; numpy values become plain numbers.

    Non-finite floats are written as ``null`` (NaN) or ``"inf"``/``"-inf"`` so the file
    stays valid JSON that any reader accepts.
    """
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def save_small_json(obj: Any, path: str | Path) -> bool:
    """Save a small JSON file (a run's status) even on a full disk; True if written.

    Atomically where there is space; else in place over the old content, written
    compactly to fit (see the module doc); else not at all (False), and the old content
    stays. Errors other than a full disk propagate.
    """
    try:
        save_json(obj, path)
        return True
    except OSError as exc:
        if not is_disk_full(exc):
            raise
    payload = (json.dumps(to_jsonable(obj), separators=(",", ":")) + "\n").encode()
    try:
        return rewrite_in_place(path, payload)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        return False


def save_yaml(obj: Any, path: str | Path) -> Path:
    """Save ``obj`` as block-style YAML, atomically, keeping key order."""
    text = yaml.safe_dump(to_jsonable(obj), sort_keys=False, default_flow_style=False)
    return atomic_write_text(path, text)


def save_torch(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path``, atomically (a model, a checkpoint)."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def save_npz(path: str | Path, arrays: dict[str, Any]) -> Path:
    """``numpy.savez`` of ``arrays`` to ``path``, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def save_table(table: Any, path: str | Path) -> Path:
    """A table as CSV without its index, atomically: a pandas DataFrame, or a list of
    records (mappings), which becomes one."""
    if not hasattr(table, "to_csv"):
        import pandas as pd

        table = pd.DataFrame(list(table))
    return atomic_write_text(path, table.to_csv(index=False))


def save_figure(fig: Any, path: str | Path, formats: tuple[str, ...] = ("png", "pdf"),
                **savefig: Any) -> list[Path]:
    """Save a matplotlib figure as ``path`` with each suffix of ``formats``, atomically,
    then close it; the paths written. ``savefig`` options go to ``Figure.savefig``."""
    base = Path(path)
    if base.suffix.lstrip(".") in formats:
        base = base.with_suffix("")
    out = []
    for fmt in formats:
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, **savefig)
        out.append(atomic_write_bytes(base.with_name(f"{base.name}.{fmt}"), buffer.getvalue()))
    pyplot = sys.modules.get("matplotlib.pyplot")  # a figure of pyplot's: let it go
    if pyplot is not None:
        pyplot.close(fig)
    return out


def load_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`save_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with the safe loader."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def make_run_subdirs(run_dir: str | Path) -> Path:
    """Create ``run_dir`` with its figs/, tables/ and logs/ folders (if missing)."""
    run_dir = Path(run_dir)
    for sub in RUN_SUBDIRS:
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    return run_dir


def now() -> str:
    """The current UTC time as status files write it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- status


@dataclass
class RunStatus:
    """A run's ``status.json``, typed.

    ``state`` is one of :data:`STATES`; ``interrupted`` marks a failed run that a signal
    or a full disk stopped (it runs again on resume). ``host``, ``pid`` and
    ``pid_started`` name the process that wrote a ``running`` status, so a reader can
    tell a live run from a killed one (:meth:`stale`). ``cpu_s`` is the CPU time (every
    thread of the process, user + system) the run used, summed over its attempts, so a
    config's cost on another machine can be read off a grid run on a busy one; runs that
    trained as one batch share their process, and each records the batch's time. Keys
    this class does not know are kept in ``extra`` and written back.
    """

    state: str = "pending"
    started: str | None = None
    config_hash: str | None = None
    host: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    attempt: int | None = None
    resumed_from_epoch: int | None = None
    ended: str | None = None
    duration_s: float | None = None
    cpu_s: float | None = None
    error: str | None = None
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    exists: bool = field(default=False, compare=False)
    """Whether it was read from a file (False: no status.json, or an unreadable one)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        known = {f.name for f in fields(cls)} - {"extra", "exists"}
        status = cls(**{k: v for k, v in data.items() if k in known})
        status.extra = {k: v for k, v in data.items() if k not in known}
        status.exists = True
        return status

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of ``status.json`` (unset fields left out)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("extra", "exists") or value is None:
                continue
            if f.name == "interrupted" and not value:
                continue
            out[f.name] = value
        out.update(self.extra)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """A field by name (or an extra key), ``default`` when unset."""
        value = getattr(self, key, None) if key not in ("extra", "exists") else None
        if value is None:
            value = self.extra.get(key)
        return default if value is None else value

    @property
    def shown(self) -> str:
        """The state as tables show it: ``interrupted`` for a failed, interrupted run."""
        return "interrupted" if self.state == "failed" and self.interrupted else self.state

    def alive(self) -> bool:
        """Whether the process this status names still runs (another host's: trusted)."""
        return is_alive(self.as_dict())

    def stale(self) -> bool:
        """A ``running`` status whose process is gone (the run was killed)."""
        return self.state == "running" and not self.alive()

    def started_by_this_process(self, config_hash: str, previous: RunStatus | None) -> None:
        """Fill in a ``running`` status of this process for ``config_hash``."""
        self.state = "running"
        self.started = now()
        self.config_hash = config_hash
        me = this_process()
        self.host, self.pid, self.pid_started = me["host"], me["pid"], me["pid_started"]
        self.attempt = (int(previous.attempt or 1) + 1) if previous and previous.exists else 1
        self.cpu_s = previous.cpu_s if previous and previous.exists else None

    def ended_now(self, state: str, wall_s: float, cpu_s: float, error: str | None = None
                  ) -> None:
        """Record the end of this attempt: ``wall_s`` seconds, ``cpu_s`` of CPU time."""
        self.state, self.ended, self.duration_s = state, now(), wall_s
        self.cpu_s = round((self.cpu_s or 0.0) + cpu_s, 3)
        if error is not None:
            self.error = error


def read_status(run_dir: str | Path) -> RunStatus:
    """A run's status; a ``pending`` one (``exists`` False) when missing or unreadable."""
    try:
        data = load_json(Path(run_dir) / STATUS_FILE)
    except (OSError, ValueError):
        return RunStatus()
    return RunStatus.from_dict(data) if isinstance(data, dict) else RunStatus()


def write_status(run_dir: str | Path, status: RunStatus, small: bool = False) -> bool:
    """Write ``status.json`` atomically; True if written.

    ``small``: on a full disk fall back to a rewrite in place
    (:func:`save_small_json`), and give up quietly (False) if even
    that finds no room, leaving the old status for liveness to judge.
    """
    path = Path(run_dir) / STATUS_FILE
    if small:
        return save_small_json(status.as_dict(), path)
    save_json(status.as_dict(), path)
    return True


def is_finished(run_dir: str | Path, config_hash: str) -> bool:
    """True when ``run_dir`` holds a finished run of the config ``config_hash``."""
    status = read_status(run_dir)
    return (status.state == "done" and status.config_hash == config_hash
            and (Path(run_dir) / FINAL_FILE).is_file())


def can_resume(run_dir: str | Path, config_hash: str) -> bool:
    """True when ``run_dir`` has a checkpoint of the config ``config_hash`` that loads."""
    from sweeplab.core.checkpoint import CheckpointError, checkpoint_path, load_checkpoint

    path = checkpoint_path(run_dir)
    if not path.is_file():
        return False
    try:
        return load_checkpoint(path).get("config_hash") == config_hash
    except CheckpointError:
        return False


def record_run_failure(run_dir: str | Path, config_hash: str, error: str,
                       interrupted: bool = False) -> None:
    """Mark a run failed (or interrupted) when its process could not: it died mid-run
    (crash, OOM, Slurm cancel), or a full disk stopped it before it started.

    A status the run recorded itself stays (``done``; ``failed``, unless this is an
    interruption and that failure is an earlier attempt's). On a full disk the status
    is rewritten in place, or, failing that, left ``running`` for liveness to judge.
    """
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    if status.state == "done" or (status.state == "failed"
                                  and (status.interrupted or not interrupted)):
        return
    status.state, status.error, status.config_hash = "failed", error, config_hash
    status.ended = now()
    status.interrupted = status.interrupted or interrupted
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        return
    write_status(run_dir, status, small=True)


# --------------------------------------------------------------------------- results


@dataclass
class RunResult:
    """What one run came to, as every executor reports it: its ``name``, ``state``
    (``done``, ``failed`` or ``interrupted``: stopped, to run again on resume), final
    metrics, error and duration. ``disk_full`` names the file a full disk stopped (the
    executor then stops the grid); ``run_dir`` is where the run lives."""

    name: str
    state: str
    final: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float = 0.0
    disk_full: str | None = None
    run_dir: Path | None = None
