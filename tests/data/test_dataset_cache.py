"""Real tasks read back from the cache equal freshly built ones bit for bit, and follow
their files' bytes (sweeplab.data.cache; issue 17)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sweeplab.data import load_dataset, read_idx, write_idx
from sweeplab.data.config import DataConfig


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEPLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same(a, b) -> None:
    for name in ("X", "y", "X_test", "y_test"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    assert a.meta == b.meta


def test_a_cached_idx_task_equals_a_fresh_one(mnist_format_dir, fresh_cache):
    cfg = DataConfig(dataset="mnist", data_dir=str(mnist_format_dir), digits=(3, 5), pca=20)
    fresh = load_dataset(cfg, seed=2, use_cache=False)
    stored = load_dataset(cfg, seed=2)
    read = load_dataset(cfg, seed=2)
    _same(fresh, stored)
    _same(fresh, read)
    assert len(list(fresh_cache.rglob("*.npz"))) == 1
    load_dataset(cfg, seed=3)  # another data seed: another entry
    load_dataset(cfg.model_copy(update={"pca": 10}), seed=2)
    assert len(list(fresh_cache.rglob("*.npz"))) == 3


def test_a_changed_file_is_a_new_entry_and_the_record_names_the_files_used(
        mnist_format_dir, tmp_path, fresh_cache):
    copy = tmp_path / "copy"
    shutil.copytree(mnist_format_dir, copy)
    cfg = DataConfig(dataset="mnist", data_dir=str(mnist_format_dir), digits=(0, 1), pca=5)
    first = load_dataset(cfg, seed=0)
    moved = load_dataset(cfg.model_copy(update={"data_dir": str(copy)}), seed=0)
    assert len(list(fresh_cache.rglob("*.npz"))) == 1  # same bytes elsewhere: same entry
    assert all(str(copy) in path for path in moved.meta["source"].values())
    assert np.array_equal(first.X, moved.X)
    labels = next(copy.rglob("train-labels*"))
    values = read_idx(labels)
    values[np.flatnonzero(values == 0)[0]] = 1  # one training label changed
    write_idx(values, labels)
    changed = load_dataset(cfg.model_copy(update={"data_dir": str(copy)}), seed=0)
    assert len(list(fresh_cache.rglob("*.npz"))) == 2  # new bytes: a new entry
    assert changed.y.sum() == first.y.sum() + 2  # a -1 (class 0) is now a +1


def test_a_cached_digits_task_equals_a_fresh_one():
    cfg = DataConfig(dataset="digits", digits=(1, 7), pca=8)
    fresh = load_dataset(cfg, seed=4, use_cache=False)
    load_dataset(cfg, seed=4)
    _same(fresh, load_dataset(cfg, seed=4))


def test_a_task_seen_before_imports_no_scikit_learn(mnist_format_dir, tmp_path):
    code = f"""
import json, sys
from sweeplab.data import load_dataset, read_idx, write_idx
from sweeplab.data.config import DataConfig
cfg = DataConfig(dataset="mnist", data_dir={str(mnist_format_dir)!r}, digits=(3, 5), pca=20)
data = load_dataset(cfg, seed=0)
print(json.dumps({{"sum": float(data.X.sum()), "sklearn": "sklearn" in sys.modules}}))
"""
    env = {**os.environ, "SWEEPLAB_CACHE": str(tmp_path / "shared")}
    outs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert outs[0]["sklearn"] and not outs[1]["sklearn"]
    assert outs[0]["sum"] == outs[1]["sum"]
