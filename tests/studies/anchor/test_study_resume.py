"""The anchor studies run end to end through the CLI and resume bit for bit.

A real ``sweeplab run anchor-composite`` is stopped by SIGTERM mid-training (AdamW state,
learning-rate schedule and batch order go into the checkpoint), resumed with
``sweeplab run --resume``, and compared with an uninterrupted run: same metric rows,
same final weights.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from sweeplab.track.local import read_metrics

TINY = ["--n_train", "3000", "--n_test", "300", "--n_heldout", "300", "--d_state", "16",
        "--epochs", "8", "--log_interval", "1", "--save_interval", "0", "--schedule",
        "warmup_cosine", "--warmup_epochs", "2", "--grad_clip", "1.0", "--device", "cpu"]


def _run(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweeplab", "run", "anchor-composite", *TINY,
                             *extra, "--out_dir", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_composite_run_files_and_metrics(tmp_path):
    proc = _run(tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    run_dir = Path(out.strip().splitlines()[-1])
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == list(range(9))
    for key in ("train_loss", "train_acc", "test_acc", "composite_acc", "symmetric_acc"):
        assert key in rows[-1]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    final = json.loads((run_dir / "metrics.json").read_text())
    assert final["composite_acc"] == rows[-1]["composite_acc"]
    assert set(torch.load(run_dir / "model.pt", weights_only=True)) >= {"head.weight"}
    train_log = (run_dir / "train.log").read_text()
    assert train_log == (run_dir / "logs" / "train.log").read_text() and "done in" in train_log


def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path):
    whole = _run(tmp_path / "whole")
    cut = _run(tmp_path / "cut")
    deadline = time.monotonic() + 120
    jsonl = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "cut").glob("*/logs/train.log"))
        # train.log holds at most about a line a second: any epoch in 2..6 will do
        if found and re.search(r"epoch [2-6] ", found[0].read_text()):
            jsonl = found[0].parents[1]
            break
        time.sleep(0.05)
    assert jsonl is not None
    cut.send_signal(signal.SIGTERM)
    cut.communicate(timeout=120)
    assert cut.returncode == 130
    run_dir = jsonl
    resumed = subprocess.run([sys.executable, "-m", "sweeplab", "run", "--resume", str(run_dir),
                              "-q"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    out, _ = whole.communicate(timeout=300)
    reference = Path(out.strip().splitlines()[-1])
    status = json.loads((run_dir / "status.json").read_text())
    assert 2 <= status["resumed_from_epoch"] < 8
    assert read_metrics(run_dir / "metrics.jsonl") == read_metrics(reference / "metrics.jsonl")
    a = torch.load(run_dir / "model.pt", weights_only=True)
    b = torch.load(reference / "model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
