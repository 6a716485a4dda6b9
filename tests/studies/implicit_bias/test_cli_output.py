"""What a person sees in the terminal: every warning once, and a notice when nothing was learned.

Each command runs in a real process and its stderr is read back. ``COLUMNS`` is wide so
that rich prints each log record on one line and a message can be counted.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from process_groups import run_group, sweeplab_command

REPO = Path(__file__).resolve().parents[3]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

SPEC_MNIST = ["--dataset", "fashion-mnist", "--digits", "0", "1", "--potential", "lp",
              "--p", "1.5", "--L", "2", "--lr", "0.02", "--epochs", "20", "--pca", "50",
              "--seed", "0"]
"""The spec's MNIST command, verbatim but for Fashion-MNIST in place of the absent MNIST."""

NOT_SEPARABLE = "not linearly separable through the origin"
NOTICE = "the run learned nothing"

needs_fashion = pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason=f"{FASHION_DIR} missing: apt-get install dataset-fashion-mnist")


def _run(cmd: list[str], out_dir: Path) -> tuple[str, dict]:
    """Run ``cmd --out_dir out_dir --plots false``; its stderr and its final.json."""
    env = {**os.environ, "COLUMNS": "1000"}
    proc = run_group([*cmd, "--out_dir", str(out_dir), "--plots", "false"], cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = out_dir.iterdir()
    return proc.stderr, json.loads((run_dir / "final.json").read_text())


def _warning_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("WARNING")]


def _assert_each_once(stderr: str, final: dict) -> None:
    """Every warning of final.json is printed exactly once, and nothing else is warned."""
    lines = _warning_lines(stderr)
    assert len(lines) == len(set(lines)) == len(final.get("warnings", [])), stderr
    for message in final.get("warnings", []):
        assert sum(message in line for line in lines) == 1, (message, stderr)


@needs_fashion
@pytest.mark.slow
def test_spec_mnist_command_offline_warns_once_and_says_it_learned_nothing(tmp_path):
    cmd = [sys.executable, "-m", "runs.scripts.train_synth", *SPEC_MNIST]
    stderr, final = _run(cmd, tmp_path)
    _assert_each_once(stderr, final)
    (not_separable,) = [w for w in final["warnings"] if NOT_SEPARABLE in w]
    (notice,) = [w for w in final["warnings"] if NOTICE in w]
    assert "20 full-batch steps at lr 0.02" in notice
    for change in ("--lr", "--epochs", "--batch_size"):
        assert change in notice
    assert final["loss"] == pytest.approx(0.693, abs=0.01)  # ln 2: where it started


@needs_fashion
@pytest.mark.slow
def test_the_same_command_with_a_larger_step_learns_and_has_no_notice(tmp_path):
    cmd = sweeplab_command("run", "implicit-bias", *SPEC_MNIST, "--lr", "1.0")
    stderr, final = _run(cmd, tmp_path)
    _assert_each_once(stderr, final)
    assert final["train_acc"] > 0.9 and final["loss"] < 0.3  # measured: 0.98, 0.07
    assert NOTICE not in stderr
    assert not any(NOTICE in w for w in final["warnings"])


def test_non_separable_synthetic_run_prints_its_warning_once(tmp_path):
    cmd = sweeplab_command("run", "implicit-bias", "--separation", "0.2", "--noise", "1.5",
                           "--epochs", "30")
    stderr, final = _run(cmd, tmp_path)
    _assert_each_once(stderr, final)
    assert sum(NOT_SEPARABLE in line for line in _warning_lines(stderr)) == 1
    assert final["separable"] is False

