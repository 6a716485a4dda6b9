"""``sweeplab logs``: last lines, train.log and run.log merged, --follow ending by itself."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from monitor_helpers import dead_pid, grid_of

from sweeplab.cli import logs
from sweeplab.cli.main import main


def make_run(tmp_path: Path, state: str = "running", pid: int | None = None) -> Path:
    """A hand-made run directory whose status says ``state`` (this process, by default)."""
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.yaml").write_text("study: toy\nconfig_hash: abc\nconfig: {}\n")
    (run / "status.json").write_text(json.dumps({
        "state": state, "host": socket.gethostname(), "pid": pid or os.getpid()}))
    return run


def set_state(run: Path, state: str, **extra) -> None:
    status = json.loads((run / "status.json").read_text())
    tmp = run / "status.json.tmp"
    tmp.write_text(json.dumps({**status, "state": state, **extra}))
    os.replace(tmp, run / "status.json")


def test_last_lines_of_a_failed_run_end_with_its_traceback(runs_root, capsys):
    run = grid_of(runs_root, "bad") / "lr=100"
    assert main(["logs", str(run), "--lines", "3", "--file", "run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert "sweeplab.errors.NonFiniteError: training loss became non-finite at step 2" in out
    full = (run / "logs" / "run.log").read_text().splitlines()
    assert out == full[-3:]


def test_grid_dir_slash_run_name_and_the_default_merge(runs_root, capsys):
    grid = grid_of(runs_root, "ok")
    run = grid / "L=2,potential=lp"
    assert main(["logs", f"{grid}/L=2,potential=lp", "--lines", "1000"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = (run / "logs" / "run.log").read_text().splitlines()
    train = run / "logs" / "train.log"
    if train.exists():
        expected += train.read_text().splitlines()
    assert sorted(out) == sorted(expected)  # every line of both logs, each once


def test_two_logs_merge_by_timestamp_keeping_records_whole(tmp_path, capsys):
    run = make_run(tmp_path, state="done")
    (run / "logs" / "run.log").write_text(
        "2026-01-01 10:00:00,100 INFO    sweeplab.run: started\n"
        "2026-01-01 10:00:02,500 ERROR   sweeplab.run: failed\n"
        "Traceback (most recent call last):\n"
        "ValueError: boom\n")
    (run / "logs" / "train.log").write_text(
        "2026-01-01 10:00:01 epoch 0 loss=1\n"
        "2026-01-01 10:00:02 epoch 1 loss=0.5\n"
        "2026-01-01 10:00:03 interrupted\n")
    assert main(["logs", str(run)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-01-01 10:00:00,100 INFO    sweeplab.run: started",
        "2026-01-01 10:00:01 epoch 0 loss=1",
        "2026-01-01 10:00:02 epoch 1 loss=0.5",
        "2026-01-01 10:00:02,500 ERROR   sweeplab.run: failed",
        "Traceback (most recent call last):",
        "ValueError: boom",
        "2026-01-01 10:00:03 interrupted",
    ]
    assert main(["logs", str(run), "--file", "train", "-n", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2026-01-01 10:00:02 epoch 1 loss=0.5", "2026-01-01 10:00:03 interrupted"]


def test_follow_prints_every_new_line_once_and_ends_when_the_run_is_done(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(logs, "POLL_SECONDS", 0.02)
    run = make_run(tmp_path)
    train = run / "logs" / "train.log"
    train.write_text("2026-01-01 10:00:00 epoch 0 loss=1\n")
    expected = ["2026-01-01 10:00:00 epoch 0 loss=1"]

    def writer() -> None:
        with open(train, "a") as fh:
            for epoch in range(1, 30):
                line = f"2026-01-01 10:00:{epoch:02d} epoch {epoch} loss={1 / (epoch + 1):.4f}"
                half = len(line) // 2
                fh.write(line[:half])  # a line lands in two pieces: printed once, whole
                fh.flush()
                time.sleep(0.003)
                fh.write(line[half:] + "\n")
                fh.flush()
                expected.append(line)
        set_state(run, "done")
        with open(train, "a") as fh:  # written just after the status flips
            fh.write("2026-01-01 10:01:00 done in 1.00s\n")
        expected.append("2026-01-01 10:01:00 done in 1.00s")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        code = main(["logs", str(run), "--follow", "--file", "train"])
    finally:
        thread.join()
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.splitlines() == expected
    assert "[run done]" in captured.err


def test_follow_of_a_run_that_fails_or_whose_process_died_ends_with_status_1(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(logs, "POLL_SECONDS", 0.02)
    run = make_run(tmp_path)
    log = run / "logs" / "run.log"
    log.write_text("2026-01-01 10:00:00,000 INFO    sweeplab.run: started\n")

    def fail() -> None:
        time.sleep(0.1)
        with open(log, "a") as fh:
            fh.write("2026-01-01 10:00:01,000 ERROR   sweeplab.run: run failed: boom\n")
        set_state(run, "failed", error="RuntimeError: boom")

    thread = threading.Thread(target=fail)
    thread.start()
    code = main(["logs", str(run), "-f"])
    thread.join()
    captured = capsys.readouterr()
    assert code == 1 and captured.out.splitlines()[-1].endswith("run failed: boom")
    assert "[run failed: RuntimeError: boom]" in captured.err

    set_state(run, "running", pid=dead_pid())
    assert main(["logs", str(run), "-f", "-n", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "(stale run)" in captured.err


@pytest.mark.parametrize("target,args,expect", [
    ("nope", [], "invalid run="),
    ("GRID/not-a-run", [], "runs of grid"),
    ("GRID", [], "runs of grid"),
    ("RUN", ["--file", "nope"], "--file: invalid choice"),
    ("RUN", ["--lines", "-1"], "invalid lines=-1"),
])
def test_bad_input_is_one_line_exit_2(runs_root, capsys, target, args, expect):
    grid = grid_of(runs_root, "ok")
    path = target.replace("GRID", str(grid)).replace("RUN", str(grid / "L=1,potential=lp"))
    assert main(["logs", path, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect in err, err


def test_a_missing_train_log_is_named(tmp_path, capsys):
    run = make_run(tmp_path, state="done")
    (run / "logs" / "run.log").write_text("2026-01-01 10:00:00,000 INFO x\n")
    assert main(["logs", str(run), "--file", "train"]) == 2
    err = capsys.readouterr().err
    assert "invalid file=train: this run has no logs/train.log; it has: run" in err
