"""A full disk stops a grid (or a run) in one line, loses nothing, and a resume finishes it.

Each test mounts a small tmpfs of its own (root only; skipped with the reason otherwise),
fills it with real runs of ``toy-fill``, then enlarges it and resumes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import toy_studies  # noqa: F401 - registers toy-fill here; workers import it themselves
import yaml

from sweeplab.cli.main import main
from sweeplab.core.experiment import save_json
from sweeplab.core.rundir import save_small_json

ROWS, WIDTH, RUNS = 400, 40, 8
"""A run writes ~0.4 MB of metrics: eight fill a 2 MB disk with room to spare."""

STOP_LINE = re.compile(
    r"sweeplab: error: disk full writing (?P<file>\S+); (?P<n>\d+) runs? interrupted, "
    r"nothing lost; free space and run (?P<again>.+)")


class SmallDisk:
    """A tmpfs mounted at ``path``, resizable."""

    def __init__(self, path: Path):
        self.path = path

    def resize(self, size: str) -> None:
        _mount("-o", f"remount,size={size}", str(self.path))


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 2 MB tmpfs under ``tmp_path``, unmounted afterwards."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    path = tmp_path / "disk"
    path.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path))
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _status(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "status.json").read_text())
    except FileNotFoundError:
        return {}


def _assert_complete(run_dir: Path, x: int) -> None:
    """The run's metrics hold each step exactly once, with the values the study logged."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(ROWS)), run_dir
    assert all(row["m7"] == x + row["epoch"] + 0.007 for row in rows)
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == ROWS + 1
    assert json.loads((run_dir / "final.json").read_text())["rows"] == ROWS


def _one_line(err: str) -> re.Match:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    match = STOP_LINE.fullmatch(lines[0])
    assert match, lines[0]
    return match


def _fill(disk: Path) -> None:
    """Take every free byte of ``disk``."""
    with open(disk / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OSError), open(disk / "probe", "wb", buffering=0) as fh:
        fh.write(b"x")  # nothing left, not even a page


HELD = "x=-1,hold_until=release"
"""With the local pool, a run that logs its rows, then stays in flight while the others
fill the disk (they wait for its status first): the stop must end it."""


def _spec(path: Path, held: bool) -> Path:
    fixed = {"rows": ROWS, "width": WIDTH}
    spec = {"study": "toy-fill", "fixed": fixed, "zip": {"x": list(range(RUNS))}}
    if held:
        fixed["wait_for"] = f"{HELD}/status.json"
        spec["zip"] = {"x": [-1, *range(RUNS)], "hold_until": ["release", *["<default>"] * RUNS]}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))  # run names follow key order
    return path


@pytest.mark.parametrize("executor", ["local", "inline"])
def test_a_grid_that_fills_the_disk_stops_in_one_line_and_resumes_exactly_once(
        small_disk, tmp_path, capfd, executor):
    held = executor == "local"
    spec = _spec(tmp_path / "fill.yaml", held)
    out = small_disk.path / "runs"
    args = ["--executor", executor, "--jobs", "2"]
    assert main(["grid", str(spec), "--tag", "fill", "--out_dir", str(out), *args]) == 1
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    stop = _one_line(captured.err)
    (grid_dir,) = out.glob("*_fill")
    assert stop["again"] == f"sweeplab grid --resume {grid_dir}"
    full_file = Path(stop["file"])
    assert full_file.is_relative_to(grid_dir) and full_file.parent.parent == grid_dir

    runs = {x: grid_dir / f"x={x}" for x in range(RUNS)} | ({-1: grid_dir / HELD} if held else {})
    statuses = {x: _status(d) for x, d in runs.items()}
    done = {x for x, s in statuses.items() if s.get("state") == "done"}
    interrupted = {x for x, s in statuses.items() if s.get("interrupted")}
    assert 0 < len(done) < len(runs)
    assert len(interrupted) == int(stop["n"]) >= 1
    assert _status(full_file.parent)["interrupted"] is True  # the run that met the full disk
    for x, status in statuses.items():
        assert status.get("state") in (None, "done", "failed"), status  # none left running
        if status.get("state") == "failed":  # stopped, never failed: a resume redoes it
            assert x in interrupted and "disk full writing" in status["error"]
    for x in done:  # nothing a finished run wrote is missing
        _assert_complete(runs[x], x)
    if held:  # in flight when the disk filled: its worker ended, the driver marked it
        assert statuses[-1]["error"] == f"stopped: disk full writing {full_file}"

    assert main(["errors", str(grid_dir), "-n", "0"]) == 1
    listed = capfd.readouterr().out
    for x in interrupted:
        assert f"interrupted {runs[x]}: " in listed
    assert f"resume it: sweeplab grid --resume {grid_dir}" in listed

    small_disk.resize("16m")
    (grid_dir / "release").touch()
    started = {x: statuses[x]["started"] for x in done}
    # inline: a second pool's start-up would test nothing more about the resume
    assert main(["grid", "--resume", str(grid_dir), "--executor", "inline"]) == 0
    assert f"{len(done)} already done, {len(runs) - len(done)} to run" in capfd.readouterr().out
    for x, run_dir in runs.items():
        status = _status(run_dir)
        assert status["state"] == "done" and "interrupted" not in status
        _assert_complete(run_dir, x)
        if x in done:  # finished before the disk filled: not run again
            assert status["started"] == started[x]
    master = (grid_dir / "master.csv").read_text().splitlines()
    assert len(master) == len(runs) + 1 and all(",done," in row for row in master[1:])


def test_a_batch_that_fills_the_disk_is_interrupted_whole_and_resumes(small_disk, tmp_path,
                                                                        capfd):
    spec = tmp_path / "fill.yaml"
    spec.write_text(yaml.safe_dump({"study": "toy-fill-batch",
                                    "fixed": {"rows": ROWS, "width": WIDTH},
                                    "grid": {"x": list(range(RUNS))}}))
    out = small_disk.path / "runs"
    args = ["--executor", "inline", "--batch", "auto"]  # one batch of every run
    assert main(["grid", str(spec), "--tag", "fill", "--out_dir", str(out), *args]) == 1
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    stop = _one_line(captured.err)
    assert stop["n"] == str(RUNS)  # the batch stopped as one: no run of it is done
    (grid_dir,) = out.glob("*_fill")
    for x in range(RUNS):
        status = _status(grid_dir / f"x={x}")
        assert status["interrupted"] is True
        assert status["error"] == f"disk full writing {stop['file']}"

    small_disk.resize("16m")
    assert main(["grid", "--resume", str(grid_dir), *args]) == 0
    for x in range(RUNS):
        assert _status(grid_dir / f"x={x}")["state"] == "done"
        _assert_complete(grid_dir / f"x={x}", x)
        assert "trained in a batch of 8 runs" in (grid_dir / f"x={x}/logs/run.log").read_text()


def test_a_grid_started_on_a_full_disk_leaves_nothing_and_says_how_to_start_again(
        small_disk, tmp_path, capfd):
    _fill(small_disk.path)
    out = small_disk.path / "runs"
    spec = _spec(tmp_path / "fill.yaml", held=False)
    assert main(["grid", str(spec), "--tag", "fill", "--out_dir", str(out),
                 "--executor", "inline"]) == 1
    stop = _one_line(capfd.readouterr().err)
    assert stop["n"] == "0" and Path(stop["file"]).name in ("spec.yaml", "driver.json")
    assert not out.exists() or not any(out.iterdir())  # no half-made grid directory
    (small_disk.path / "filler").unlink()
    small_disk.resize("16m")
    command = stop["again"].split()
    assert command[:2] == ["sweeplab", "grid"] and main(command[1:]) == 0
    (grid_dir,) = out.glob("*_fill")
    for x in range(RUNS):
        _assert_complete(grid_dir / f"x={x}", x)


def test_a_run_that_fills_the_disk_stops_in_one_line_and_resumes(small_disk, capfd):
    out = small_disk.path / "runs"
    rows = 4000  # ~4 MB of metrics on a 2 MB disk
    assert main(["run", "toy-fill", "--rows", str(rows), "--width", str(WIDTH),
                 "--out_dir", str(out)]) == 1
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    stop = _one_line(captured.err)
    (run_dir,) = out.iterdir()
    assert stop["n"] == "1" and stop["again"] == f"sweeplab run --resume {run_dir}"
    assert Path(stop["file"]).parent == run_dir
    status = _status(run_dir)
    assert status["state"] == "failed" and status["interrupted"] is True
    assert status["error"] == f"disk full writing {stop['file']}"

    small_disk.resize("16m")
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert _status(run_dir)["state"] == "done"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(rows))
    assert json.loads((run_dir / "final.json").read_text())["rows"] == rows


def test_a_status_is_still_recorded_on_a_full_disk(small_disk):
    path = small_disk.path / "status.json"
    running = {"state": "running", "config_hash": "abc", "pid": 1, "host": "h"}
    save_json(running, path)
    _fill(small_disk.path)
    stopped = {**running, "state": "failed", "interrupted": True,
               "error": f"disk full writing {small_disk.path / 'metrics.jsonl'}"}
    with pytest.raises(OSError) as excinfo:  # an atomic write has no room on this disk
        save_json(stopped, path)
    assert excinfo.value.filename == str(path)  # named: the file, not its temporary twin
    assert save_small_json(stopped, path) is True  # over its own bytes, in place
    assert json.loads(path.read_text()) == stopped
    assert not [p.name for p in small_disk.path.iterdir() if p.name.endswith(".tmp")]

    too_big = {**stopped, "error": "x" * 8192}  # more than the file's block: left as it was
    assert save_small_json(too_big, path) is False
    assert json.loads(path.read_text()) == stopped
    assert save_small_json(stopped, small_disk.path / "missing.json") is False


def test_any_verb_that_meets_a_full_disk_says_so_in_one_line(small_disk, tmp_path, capfd):
    """``sweeplab analyze`` writing its report to a full disk: one line, exit status 1."""
    spec = tmp_path / "small.yaml"
    spec.write_text(yaml.safe_dump({"study": "toy-fill", "fixed": {"rows": 5, "width": 2},
                                    "grid": {"x": [0, 1]}}))
    out = tmp_path / "runs"
    assert main(["grid", str(spec), "--out_dir", str(out), "--executor", "inline"]) == 0
    (grid_dir,) = out.glob("*_small")
    _fill(small_disk.path)
    capfd.readouterr()
    code = main(["analyze", str(grid_dir), "--output_dir", str(small_disk.path / "report")])
    err = capfd.readouterr().err
    assert code == 1 and "Traceback" not in err
    (line,) = err.strip().splitlines()
    # the file is named where the failing write said which (pandas' writers do not)
    assert re.fullmatch(r"sweeplab: error: disk full( writing \S+)?; free space and run the "
                        r"command again", line), line
