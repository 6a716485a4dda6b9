"""``sweeplab grid`` trains an anchor grid's seeds and gammas of a depth as one batch
(``--batch auto``, the default) or one by one (``--batch off``): the same run directories,
files and metric rows either way (float32, to rounding). A grid stopped by SIGTERM
mid-batch and resumed ends where the uninterrupted grid does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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


RESUME_SPEC = SPEC.replace("epochs: 3", "epochs: 12").replace("n_train: 64", "n_train: 384") \
    .replace("n_layers: [1, 2]", "n_layers: [2]")


def _grid_process(tmp_path: Path, tag: str) -> subprocess.Popen:
    spec = tmp_path / "resume.yaml"
    spec.write_text(RESUME_SPEC)
    return subprocess.Popen([sys.executable, "-m", "sweeplab", "grid", str(spec), "--out_dir",
                             str(tmp_path / tag), "--executor", "inline", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_sigterm_mid_batch_then_grid_resume_equals_the_uninterrupted_grid(tmp_path):
    """The batch checkpoints every run on SIGTERM; ``grid --resume`` continues each alone
    (the grid resumes a run with a checkpoint alone) to the uninterrupted batch's rows."""
    whole = _grid_process(tmp_path, "whole")
    cut = _grid_process(tmp_path, "cut")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(tmp_path.glob("cut/*/*/checkpoints/*")):
        time.sleep(0.02)
    cut.send_signal(signal.SIGTERM)
    _, err = cut.communicate(timeout=240)
    assert cut.returncode != 0, err
    (grid_dir,) = [p for p in (tmp_path / "cut").iterdir() if p.is_dir()]
    stopped = {name: json.loads((d / "status.json").read_text()) for name, d in
               _runs(grid_dir).items()}
    assert all(s["state"] == "failed" and s.get("interrupted") for s in stopped.values())
    resumed = subprocess.run([sys.executable, "-m", "sweeplab", "grid", "--resume",
                              str(grid_dir), "--executor", "inline"],
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    _, err = whole.communicate(timeout=240)
    assert whole.returncode == 0, err
    (reference,) = [p for p in (tmp_path / "whole").iterdir() if p.is_dir()]
    ref_runs = _runs(reference)
    for name, run_dir in _runs(grid_dir).items():
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "done" and 2 <= status["resumed_from_epoch"] < 12, name
        rows, ref = (read_metrics(d / "metrics.jsonl") for d in (run_dir, ref_runs[name]))
        assert [r["epoch"] for r in rows] == [r["epoch"] for r in ref] == list(range(13))
        for row, want in zip(rows, ref):
            assert row == pytest.approx(want, abs=1e-6), (name, row["epoch"])
        a, b = (torch.load(d / "model.pt") for d in (run_dir, ref_runs[name]))
        assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6
