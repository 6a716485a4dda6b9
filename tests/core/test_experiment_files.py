"""Run directories and the file utilities: atomic, unique, JSON-safe, reproducible."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from sweeplab import make_experiment_dir, save_json, save_yaml, set_seeds
from sweeplab.core.experiment import atomic_write_text


def test_make_experiment_dir_layout_and_uniqueness(tmp_path):
    dirs = [make_experiment_dir(tmp_path / "runs_out", tag="my tag/1") for _ in range(3)]
    assert len(set(dirs)) == 3
    for d in dirs:
        assert d.parent == tmp_path / "runs_out"
        assert "my_tag_1" in d.name and "/" not in d.name
        assert all((d / sub).is_dir() for sub in ("figs", "tables", "logs"))
    plain = make_experiment_dir(tmp_path / "other")
    assert plain.name[:8].isdigit() and "_" not in plain.name.split("-")[0]


def test_save_json_handles_numpy_paths_and_non_finite(tmp_path):
    obj = {"a": np.float64(1.5), "b": np.arange(3), "c": Path("/x"), "d": (1, 2),
           "nan": float("nan"), "inf": float("inf"), "i": np.int64(7)}
    path = save_json(obj, tmp_path / "sub" / "x.json")
    back = json.loads(path.read_text())  # strict JSON: no NaN tokens
    assert back == {"a": 1.5, "b": [0, 1, 2], "c": "/x", "d": [1, 2], "nan": None,
                    "inf": "inf", "i": 7}


def test_save_yaml_round_trip_keeps_order(tmp_path):
    path = save_yaml({"z": 1, "a": [1, 2], "m": {"k": np.float32(0.5)}}, tmp_path / "c.yaml")
    text = path.read_text()
    assert text.index("z:") < text.index("a:")
    assert yaml.safe_load(text) == {"z": 1, "a": [1, 2], "m": {"k": 0.5}}


def test_atomic_write_leaves_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left


def test_set_seeds_makes_python_numpy_and_torch_reproducible():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    set_seeds(11)
    a = draw()
    set_seeds(11)
    assert draw() == a
    set_seeds(12)
    assert draw() != a


def test_atomic_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~0o022 or path.stat().st_mode & 0o777 == 0o644
