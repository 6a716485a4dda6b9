"""Checkpoints through RunContext: what is saved, when, and how a run resumes from it.

A toy study walks a random walk with torch's global generator (so a resume that lost
the RNG state would diverge) and checkpoints through ``ctx.interruptible``.
"""

from __future__ import annotations

import json
import os
import re
import signal

import pytest
import torch
from pydantic import Field

from sweeplab import RunContext, StudyConfig, get_study, make_experiment_dir, register_study
from sweeplab.core.checkpoint import (
    CheckpointError,
    checkpoint_path,
    load_checkpoint,
)
from sweeplab.execute.single import execute_run
from sweeplab.track.local import read_metrics


class WalkConfig(StudyConfig):
    """A random walk of ``steps`` steps; may signal itself or fail at a step.

    The test knobs are left out of the identity, so a run stopped by one resumes without.
    """

    IDENTITY_EXCLUDED = frozenset({"save_interval", "signal_at", "fail_at", "signal_outside"})

    steps: int = Field(40, ge=1)
    seed: int = 0
    signal_at: int | None = None
    fail_at: int | None = None
    signal_outside: bool = False


@register_study("toy-walk", config=WalkConfig)
def walk(cfg: WalkConfig, ctx: RunContext) -> dict[str, float]:
    """x_{t+1} = x_t + N(0, 1) from the global generator; logs x every log_interval."""
    if cfg.signal_outside:
        os.kill(os.getpid(), signal.SIGTERM)
    saved = ctx.restore()
    position = {"step": 0, "x": 0.0} if saved is None else dict(saved)
    with ctx.interruptible(lambda: dict(position), last_epoch=cfg.steps) as at_epoch:
        while True:
            step = position["step"]
            at_epoch(step)
            if step % cfg.log_interval == 0 or step == cfg.steps:
                ctx.log(step, x=position["x"])
            if step == cfg.steps:
                break
            if step == cfg.fail_at:
                raise RuntimeError(f"failed at {step}")
            if step == cfg.signal_at:
                os.kill(os.getpid(), signal.SIGTERM)
            position["x"] += float(torch.randn(()))
            position["step"] = step + 1
    return {"x": position["x"]}


def _run(run_dir, resume=False, **kw):
    return execute_run(get_study("toy-walk"), WalkConfig(**kw), run_dir, resume=resume)


def _xs(run_dir):
    return [(r["epoch"], r["x"]) for r in read_metrics(run_dir / "metrics.jsonl")]


def test_a_signal_inside_the_loop_checkpoints_at_the_next_boundary(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    with pytest.raises(KeyboardInterrupt, match="SIGTERM at epoch 8; checkpoint saved"):
        _run(run_dir, signal_at=7, save_interval=5)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["interrupted"] is True
    ckpt = load_checkpoint(checkpoint_path(run_dir))
    assert (ckpt["epoch"], ckpt["reason"]) == (8, "signal")
    assert ckpt["state"]["step"] == 8
    assert ckpt["metrics"] == {"offset": (run_dir / "metrics.jsonl").stat().st_size, "rows": 8}


def test_resume_after_a_signal_equals_an_uninterrupted_run(tmp_path):
    whole = make_experiment_dir(tmp_path, "whole")
    _run(whole, save_interval=5)
    cut = make_experiment_dir(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt):
        _run(cut, signal_at=13, save_interval=5)
    assert _run(cut, resume=True, save_interval=5).state == "done"
    assert _xs(cut) == _xs(whole)
    assert [e for e, _ in _xs(cut)] == list(range(41))
    status = json.loads((cut / "status.json").read_text())
    assert status["resumed_from_epoch"] == 14 and status["attempt"] == 2
    assert (cut / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()


def test_a_crash_after_a_checkpoint_drops_the_rows_it_does_not_cover(tmp_path):
    whole = make_experiment_dir(tmp_path, "whole")
    _run(whole, save_interval=10)
    run_dir = make_experiment_dir(tmp_path, "crash")
    result = _run(run_dir, save_interval=10, fail_at=25)
    assert result.state == "failed"
    assert [e for e, _ in _xs(run_dir)][-1] == 25  # rows 21..25 beyond the checkpoint
    assert load_checkpoint(checkpoint_path(run_dir))["epoch"] == 20
    assert _run(run_dir, resume=True, save_interval=10).state == "done"
    assert _xs(run_dir) == _xs(whole)


def test_checkpoints_come_every_save_interval_and_at_the_end(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    _run(run_dir, steps=23, save_interval=5)
    events = re.findall(r"checkpoint at epoch (\d+) \((\w+)\)",
                        (run_dir / "logs" / "train.log").read_text())
    assert events == [("5", "interval"), ("10", "interval"), ("15", "interval"),
                      ("20", "interval"), ("23", "final")]
    only_end = make_experiment_dir(tmp_path, "zero")
    _run(only_end, steps=23, save_interval=0)
    assert load_checkpoint(checkpoint_path(only_end))["reason"] == "final"


def test_train_log_lines_carry_timestamps(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    _run(run_dir, steps=5)
    lines = (run_dir / "logs" / "train.log").read_text().splitlines()
    assert lines and all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", ln) for ln in lines)
    assert lines[0].endswith("epoch 0 x=0") and "done in" in lines[-1]


def test_a_signal_outside_the_loop_stops_at_once(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(run_dir, signal_outside=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert not checkpoint_path(run_dir).exists()
    assert json.loads((run_dir / "status.json").read_text())["interrupted"] is True


def _raise(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def test_resume_without_a_checkpoint_starts_over(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    _run(run_dir, fail_at=3, save_interval=0)
    assert not checkpoint_path(run_dir).exists()
    assert _run(run_dir, resume=True).state == "done"
    assert [e for e, _ in _xs(run_dir)] == list(range(41))


def test_a_checkpoint_of_another_config_is_refused(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    _run(run_dir, steps=10)
    with pytest.raises(CheckpointError, match="belongs to config"):
        _run(run_dir, resume=True, steps=11)


def test_a_corrupt_checkpoint_is_reported_and_the_run_starts_over(tmp_path):
    run_dir = make_experiment_dir(tmp_path)
    _run(run_dir, fail_at=12, save_interval=5)
    path = checkpoint_path(run_dir)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(path)
    result = _run(run_dir, resume=True, save_interval=5)
    assert result.state == "done"
    assert any("starting over" in w for w in result.final["warnings"])
    assert [e for e, _ in _xs(run_dir)] == list(range(41))


def test_save_interval_is_not_part_of_the_run_identity():
    assert WalkConfig(save_interval=1).config_hash() == WalkConfig(save_interval=50).config_hash()
    assert WalkConfig(log_interval=2).config_hash() != WalkConfig().config_hash()
