"""``sweeplab grid`` trains an anchor grid's seeds and gammas of a depth as one batch
(``--batch auto``, the default) or one by one (``--batch off``): the same run directories,
files and metric rows either way (float32, to rounding)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sweeplab.cli.main import main
from sweeplab.track.local import read_metrics

SPEC = """\
study: anchor-composite
name: batch-check
run_name: "L{n_layers}_G{gamma}_S{seed}"
fixed:
  device: cpu
  d_model: 8
  d_state: 8
  epochs: 3
  batch_size: 16
  n_train: 64
  n_test: 32
  n_heldout: 32
  log_interval: 1
  save_interval: 2
grid:
  n_layers: [1, 2]
  gamma: [0.5, 1.0]
  seed: [0, 1]
"""


def _grid(tmp_path: Path, batch: str) -> Path:
    spec = tmp_path / "grid.yaml"
    spec.write_text(SPEC)
    out = tmp_path / batch
    assert main(["grid", str(spec), "--out_dir", str(out), "--executor", "inline",
                 "--batch", batch]) == 0
    (grid_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return grid_dir


def _runs(grid_dir: Path) -> dict[str, Path]:
    return {p.name: p for p in grid_dir.iterdir() if (p / "config.yaml").is_file()}


def test_batch_auto_and_off_write_the_same_runs(tmp_path, one_thread):
    auto, off = _runs(_grid(tmp_path, "auto")), _runs(_grid(tmp_path, "off"))
    assert auto.keys() == off.keys() and len(auto) == 8
    for name, run_dir in auto.items():
        log = (run_dir / "logs" / "run.log").read_text()
        assert "trained in a batch of 4 runs" in log, name  # one batch per depth
        assert "trained in a batch" not in (off[name] / "logs" / "run.log").read_text()
        assert sorted(p.name for p in run_dir.iterdir()) == sorted(
            p.name for p in off[name].iterdir())
        rows, alone = (read_metrics(d / "metrics.jsonl") for d in (run_dir, off[name]))
        assert [r["epoch"] for r in rows] == [r["epoch"] for r in alone] == [0, 1, 2, 3]
        for row, ref in zip(rows, alone):
            assert list(row) == list(ref)
            assert row == pytest.approx(ref, abs=1e-5)
        a, b = (torch.load(d / "model.pt") for d in (run_dir, off[name]))
        assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5
