"""An interrupted-then-resumed implicit-bias run equals an uninterrupted one, bit for bit.

Real processes, real signals: ``sweeplab run`` is stopped by SIGTERM (a checkpoint at
the next epoch) or killed with SIGKILL (only the periodic checkpoint survives), resumed
with ``sweeplab run --resume``, and its metrics.jsonl, metrics.csv, final.json and
directions.json compared byte for byte with a run that was never interrupted. A grid
whose driver gets SIGTERM passes it on to its workers; a driver killed with SIGKILL
leaves orphaned workers, which stop by themselves. Either way every run checkpoints, no
worker outlives the driver, and the resume continues every run from its checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from process_groups import kill_group, run_group, started, sweeplab_command
from sweeplab.cli.main import main
from sweeplab.core.checkpoint import checkpoint_path, load_checkpoint
from sweeplab.track.local import read_metrics

# Long enough that the stop lands mid-run: metrics reach the disk up to 1 s (512 rows)
# after they are logged, so a test sees a run's progress late by that much.
EPOCHS = 4000
GRID_EPOCHS = 6000
FLAGS = ["--epochs", str(EPOCHS), "--plots", "false", "--save_interval", "300"]
COMPARED = ("metrics.jsonl", "metrics.csv", "final.json", "directions.json")


_sweeplab = sweeplab_command


@pytest.fixture
def start(tmp_path):
    """Start ``sweeplab run implicit-bias`` into ``tmp_path``; returns (process, run dir)."""
    procs: list[subprocess.Popen] = []

    def _start(*extra: str) -> tuple[subprocess.Popen, Path]:
        args = ("run", "implicit-bias", *FLAGS, *extra, "--out_dir", str(tmp_path))
        proc = subprocess.Popen(_sweeplab(*args), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        run_dir = _wait_for(lambda: next(tmp_path.glob("*/status.json"), None)).parent
        return proc, run_dir

    yield _start
    for proc in procs:
        kill_group(proc)
        proc.stderr.close()


def _wait_for(probe, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("reference")
    done = run_group(_sweeplab("run", "implicit-bias", *FLAGS, "--out_dir", str(out), "-q"))
    assert done.returncode == 0, done.stderr
    return next(out.iterdir())


def _assert_same(run_dir: Path, reference: Path) -> None:
    for name in COMPARED:
        assert (run_dir / name).read_bytes() == (reference / name).read_bytes(), name
    epochs = [r["epoch"] for r in read_metrics(run_dir / "metrics.jsonl")]
    assert epochs == list(range(EPOCHS + 1))


def _resume(run_dir: Path) -> subprocess.CompletedProcess:
    return run_group(_sweeplab("run", "--resume", str(run_dir), "-q"))


def test_sigterm_checkpoints_and_resume_is_bit_for_bit(start, reference):
    proc, run_dir = start()
    _wait_for(lambda: len(read_metrics(run_dir / "metrics.jsonl")) > 200)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"sweeplab run --resume {run_dir}" in err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["interrupted"] is True and "checkpoint saved" in status["error"]
    ckpt = load_checkpoint(checkpoint_path(run_dir))
    assert ckpt["reason"] == "signal" and 0 < ckpt["epoch"] < EPOCHS
    assert ckpt["metrics"]["rows"] == ckpt["epoch"]  # rows 0..epoch-1 are covered

    resumed = _resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "status.json").read_text())["resumed_from_epoch"] == ckpt["epoch"]
    _assert_same(run_dir, reference)


def test_kill_9_resumes_from_the_periodic_checkpoint_bit_for_bit(start, reference):
    # save_interval is not part of the identity: the reference saved every 300 epochs
    proc, run_dir = start("--save_interval", "600")
    path = checkpoint_path(run_dir)
    _wait_for(path.exists)
    covered = load_checkpoint(path)["metrics"]["rows"]
    # wait until rows beyond the checkpoint are on disk: the resume must drop them
    _wait_for(lambda: len(read_metrics(run_dir / "metrics.jsonl")) > covered + 50)
    proc.kill()
    proc.wait(timeout=30)
    ckpt = load_checkpoint(path)
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert ckpt["reason"] == "interval" and len(rows) > ckpt["metrics"]["rows"]

    resumed = _resume(run_dir)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(run_dir, reference)


def test_resume_refuses_bad_requests_in_one_line(tmp_path, reference, capsys):
    assert main(["run", "--resume", str(tmp_path)]) == 2
    assert "invalid resume=" in capsys.readouterr().err
    assert main(["run", "implicit-bias", "--resume", str(reference), "--lr", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "invalid lr=0.5: a resumed run keeps its config (lr=0.1)" in err and "\n" not in err
    assert main(["run", "--resume", str(reference)]) == 0
    assert "already done; nothing to resume" in capsys.readouterr().out


def _grid_command(tmp_path: Path, tag: str, *extra: str) -> list[str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "implicit-bias",
        "fixed": {"epochs": GRID_EPOCHS, "plots": False, "save_interval": 1000},
        "grid": {"seed": [0, 1]},
    }))
    return _sweeplab("grid", str(spec), "--tag", tag, "--jobs", "2", "--executor", "local",
                     "--out_dir", str(tmp_path / "runs_out"), *extra)


@pytest.fixture(scope="module")
def grid_reference(tmp_path_factory) -> Path:
    """The grid of the two tests below, never interrupted."""
    tmp_path = tmp_path_factory.mktemp("grid_reference")
    done = run_group(_grid_command(tmp_path, "ref"))
    assert done.returncode == 0, done.stderr
    return next((tmp_path / "runs_out").glob("*_ref"))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_stopped_grid_driver_stops_its_workers_and_resume_continues(
        tmp_path, grid_reference, stop):
    """SIGTERM: the driver passes it on. SIGKILL: the driver dies at once, and each worker,
    orphaned, stops by itself: it checkpoints, exits, and nothing outlives the driver."""
    cmd = _grid_command(tmp_path, "g")
    out = tmp_path / "runs_out"
    with started(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        grid_dir = _wait_for(lambda: next(out.glob("*_g"), None))
        runs = [grid_dir / "seed=0", grid_dir / "seed=1"]
        _wait_for(lambda: all(len(read_metrics(r / "metrics.jsonl")) > 100 for r in runs))
        workers = [json.loads((r / "status.json").read_text())["pid"] for r in runs]
        os.kill(proc.pid, getattr(signal, stop))  # the driver only, as `kill PID` would
        proc.wait(timeout=60)
        _wait_for(lambda: all(_gone(pid) for pid in workers), timeout=60)
    for run in runs:
        status = json.loads((run / "status.json").read_text())
        assert status["interrupted"] is True and "checkpoint saved" in status["error"]
    epochs = [load_checkpoint(checkpoint_path(r))["epoch"] for r in runs]
    assert all(0 < e < GRID_EPOCHS for e in epochs), epochs

    resumed = run_group(cmd)
    assert resumed.returncode == 0, resumed.stderr
    for run, epoch in zip(runs, epochs):
        status = json.loads((run / "status.json").read_text())
        assert status["resumed_from_epoch"] == epoch
        for name in COMPARED:
            assert (run / name).read_bytes() == (grid_reference / run.name / name).read_bytes()
