"""kill -9 of a grid of the user's own code, then a resume: every point done exactly once;
and a function of one's own that keeps checkpoints continues from the last one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml
from user_folder import calls, losses, sweeplab

from process_groups import started

STUDIES = {"function": {"study": "./mystudy.py:run"}, "script": {"command": "python train.py"}}


@pytest.mark.parametrize("kind", sorted(STUDIES))
def test_kill_9_mid_grid_then_resume_finishes_every_point_once(user_dir, kind):
    spec = {**STUDIES[kind], "fixed": {"lr": 0.1}, "grid": {"seed": [0, 1, 2]}}
    (user_dir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (user_dir / "hold-2").touch()  # seed 2 waits for this file to go: the kill lands then
    cmd = [sys.executable, "-m", "sweeplab", "grid", "spec.yaml", "--jobs", "2"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with started(cmd, cwd=user_dir, env=env, stdout=subprocess.DEVNULL,
                 stderr=subprocess.DEVNULL) as driver:
        deadline = time.monotonic() + 180
        while not (calls(user_dir, "seed=2") and _done(user_dir, "seed=0")
                   and _done(user_dir, "seed=1")):
            assert driver.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        held = int((user_dir / "calls" / "seed=2.txt").read_text().split()[0])
    # leaving the block SIGKILLs the driver and its workers at once
    _gone(held)  # a script's own process too (the kernel's parent-death signal)
    (grid,) = (user_dir / "runs_out").glob("*_spec")
    before = {n: _status(grid / n) for n in ("seed=0", "seed=1", "seed=2")}
    assert before["seed=2"]["state"] == "running"

    (user_dir / "hold-2").unlink()
    resumed = sweeplab(user_dir, *cmd[3:])
    assert resumed.returncode == 0, resumed.stderr
    assert "2 already done, 1 to run" in resumed.stdout
    step = "step" if kind == "script" else "epoch"
    for seed in (0, 1, 2):
        run = grid / f"seed={seed}"
        status = _status(run)
        assert status["state"] == "done"
        assert calls(user_dir, f"seed={seed}") == (2 if seed == 2 else 1)
        if seed < 2:  # finished runs were not touched
            assert status["started"] == before[f"seed={seed}"]["started"]
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r[step] for r in rows] == list(range(6))  # once each, no duplicate
        assert [r["loss"] for r in rows] == pytest.approx(losses(0.1, seed=seed), rel=1e-12)


def _status(run_dir) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def _done(folder, run: str) -> bool:
    paths = list((folder / "runs_out").glob(f"*_spec/{run}/status.json"))
    try:
        return bool(paths) and _status(paths[0].parent)["state"] == "done"
    except (OSError, ValueError):
        return False


def _gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail(f"process {pid} of the killed grid was still running")


CHECKPOINTED = '''\
"""Halves x each epoch, with sweeplab checkpoints; fails at epoch 3 while crash-once exists."""
from pathlib import Path

from sweeplab import RunContext, StudyConfig

HERE = Path(__file__).resolve().parent


class Config(StudyConfig):
    epochs: int = 6


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    state = ctx.restore()
    x, start = (state["x"], state["epoch"]) if state else (1.0, 0)
    with open(HERE / "starts.txt", "a") as fh:
        fh.write(f"{start}\\n")
    with ctx.interruptible(lambda: {"x": x, "epoch": epoch}, last_epoch=cfg.epochs) as at_epoch:
        for epoch in range(start, cfg.epochs + 1):
            at_epoch(epoch)
            if epoch == 3 and (HERE / "crash-once").exists():
                (HERE / "crash-once").unlink()
                raise RuntimeError("lost the machine")
            ctx.log(epoch, x=x)
            x /= 2
    return {"x": x}
'''


def test_a_function_that_keeps_checkpoints_continues_from_the_last_one(tmp_path, monkeypatch):
    pytest.importorskip("torch")  # checkpoints are torch.save files
    from sweeplab.cli.main import main

    (tmp_path / "ck.py").write_text(CHECKPOINTED)
    (tmp_path / "crash-once").touch()
    monkeypatch.chdir(tmp_path)
    assert main(["run", "./ck.py:run", "--save_interval", "2", "-q"]) == 1
    (run,) = (tmp_path / "runs_out").iterdir()
    assert main(["run", "--resume", str(run), "-q"]) == 0
    assert (tmp_path / "starts.txt").read_text().split() == ["0", "2"]  # from epoch 2's
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(7))  # once each
    assert [r["x"] for r in rows] == [2.0 ** -k for k in range(7)]
