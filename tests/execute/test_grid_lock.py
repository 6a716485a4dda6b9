"""One driver per grid folder: a second one exits 2 naming the first; a dead one's lock is
taken over. And process liveness that a reused pid cannot fool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeplab.cli.main import main
from sweeplab.core.liveness import is_alive, this_process
from sweeplab.execute.grid_lock import GridLock, GridLockedError

SPEC = ("study: implicit-bias\n"
        "fixed: {epochs: 4000, plots: false, n_samples: 64, save_interval: 100}\n"
        "grid: {seed: [0, 1, 2]}\n")


def _driver(tmp_path: Path) -> subprocess.Popen:
    (tmp_path / "g.yaml").write_text(SPEC)
    return subprocess.Popen(
        [sys.executable, "-m", "sweeplab", "grid", "g.yaml", "--executor", "inline"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)


def _wait_for_holder(tmp_path: Path, proc: subprocess.Popen) -> Path:
    """The grid folder, once its first run is running (the driver has prepared it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = list((tmp_path / "runs_out").glob("*_g/seed=0/status.json"))
        if found and json.loads(found[0].read_text()).get("state") == "running":
            return found[0].parent.parent
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    raise AssertionError("the first driver never started a run")


def test_a_second_driver_exits_2_naming_the_first_and_a_dead_ones_lock_is_taken_over(
        tmp_path, capsys, monkeypatch, caplog):
    first = _driver(tmp_path)
    try:
        grid_dir = _wait_for_holder(tmp_path, first)
        monkeypatch.chdir(tmp_path)
        assert json.loads((grid_dir / ".sweeplab/driver.json").read_text())["pid"] == first.pid
        before = (grid_dir / "grid.json").read_bytes()
        for argv in (["grid", "g.yaml", "--executor", "inline"],
                     ["grid", "--resume", str(grid_dir.relative_to(tmp_path))]):
            assert main(argv) == 2
            line = capsys.readouterr().err.strip()
            assert "\n" not in line
            assert f"is being run by pid {first.pid} on " in line
            assert f"sweeplab grid --resume {grid_dir.relative_to(tmp_path)}" in line
        assert (grid_dir / "grid.json").read_bytes() == before  # no session of its own
        assert first.poll() is None  # the first driver runs on
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

    # the dead driver's lock is free: the same command takes the grid over and ends it
    with caplog.at_level("WARNING", logger="sweeplab.grid"):
        assert main(["grid", "g.yaml", "--executor", "inline"]) == 0
    assert f"taking over the grid from a driver that is gone (pid {first.pid}" in caplog.text
    assert "3 done, 0 failed of 3 runs" in capsys.readouterr().out
    holder = json.loads((grid_dir / ".sweeplab" / "driver.json").read_text())
    assert holder["pid"] == os.getpid() and "released" in holder


def test_the_lock_is_released_when_the_driver_ends_or_fails(tmp_path):
    with GridLock(tmp_path, ["x"]):
        with pytest.raises(GridLockedError):
            # a second lock object in another process would block; in this one the
            # OS lock is per open file, so a second GridLock sees it taken too
            GridLock(tmp_path, ["y"]).acquire()
    GridLock(tmp_path, ["z"]).acquire().release()


def test_liveness_checks_the_process_start_time_not_only_its_pid():
    me = this_process()
    assert is_alive(me)
    assert not is_alive({**me, "pid_started": me["pid_started"] - 3600})  # a reused pid
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not is_alive({**me, "pid": gone.pid, "pid_started": None})
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{zombie.pid}/stat").read_text().split(
            ")")[1].split()[0] != "Z":
        time.sleep(0.05)
    assert not is_alive({**me, "pid": zombie.pid, "pid_started": None})  # dead, not reaped
    zombie.wait()
    assert is_alive({"host": "another-host", "pid": 1})  # not checkable: trusted
