"""Read an offline wandb run back from its ``run-<id>.wandb`` transaction log.

The file is wandb's record log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0),
then LevelDB-log framing in 32 KiB blocks (each chunk: CRC-32 of type + data, uint16
length, uint8 type FULL/FIRST/MIDDLE/LAST), each record a ``wandb_internal_pb2.Record``.
wandb 0.31 no longer ships a Python reader of its own, so the tests read it here, with
the checksum verified: what they assert is what wandb would upload on ``wandb sync``.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_records(path: Path):
    """Every ``Record`` in the file, in order; raises on a bad checksum or header."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B" or data[4:6] != b"\xe1\xbe":
        raise ValueError(f"{path}: not a wandb transaction log")
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # block trailer padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if crc == length == kind == 0:  # zero padding up to the next block
            pos += left
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        if zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != crc:
            raise ValueError(f"{path}: bad checksum at byte {pos}")
        pos += HEADER + length
        if kind == FULL:
            payload = chunk
        elif kind == FIRST:
            parts = chunk
            continue
        elif kind == MIDDLE:
            parts += chunk
            continue
        else:
            payload, parts = parts + chunk, b""
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def _key(item: Any) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


@dataclass
class OfflineRun:
    """What an offline run recorded: identity, config, history rows, summary, exit code."""

    run_id: str
    project: str
    name: str
    group: str
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def read_offline_run(wandb_file: Path, timeout: float = 10.0) -> OfflineRun:
    """Parse ``run-<id>.wandb`` into an :class:`OfflineRun` (summary updates applied in order).

    ``run.finish()`` returns before wandb's service has written the last records, so this
    waits (up to ``timeout`` seconds) until the file holds the run's exit record.
    """
    deadline = time.monotonic() + timeout
    records = list(iter_records(wandb_file))
    while not any(r.HasField("exit") for r in records) and time.monotonic() < deadline:
        time.sleep(0.02)
        records = list(iter_records(wandb_file))
    run: OfflineRun | None = None
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            config = {_key(u): json.loads(u.value_json) for u in r.config.update}
            run = OfflineRun(r.run_id, r.project, r.display_name, r.run_group, config)
        elif kind == "config" and run is not None:
            run.config.update({_key(u): json.loads(u.value_json) for u in record.config.update})
        elif kind == "history" and run is not None:
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary" and run is not None:
            run.summary.update({_key(u): json.loads(u.value_json)
                                for u in record.summary.update})
        elif kind == "exit" and run is not None:
            run.exit_code = record.exit.exit_code
    if run is None:
        raise ValueError(f"{wandb_file}: no run record")
    return run


def offline_runs(root: Path, run_id: str) -> list[Path]:
    """The ``.wandb`` files of run ``run_id`` under ``root``, oldest first."""
    # a run resumed within the same second gets a "-1" suffix on its folder
    return sorted(path for path in Path(root).rglob(f"run-{run_id}.wandb")
                  if path.parent.name.startswith("offline-run-"))
