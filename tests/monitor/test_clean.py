"""``sweeplab clean``: frees exactly the finished runs' files and says how much."""

from __future__ import annotations

import os

from monitor_helpers import grid_of, update_status, write_checkpoint

from sweeplab.analysis.load import find_run_dirs
from sweeplab.cli.main import main
from sweeplab.core.checkpoint import checkpoint_files
from sweeplab.execute.run_files import human_size


def checkpoints_by_run(root):
    for run in find_run_dirs(root):
        write_checkpoint(run)
    return {run: checkpoint_files(run) for run in find_run_dirs(root)}


def size(paths) -> int:
    return sum(p.stat().st_size for p in paths)


def test_checkpoints_of_finished_runs_go_unfinished_ones_stay(runs_root, capsys):
    files = checkpoints_by_run(runs_root)
    failed = grid_of(runs_root, "bad") / "lr=100"
    done = [p for run, ps in files.items() if run != failed for p in ps]
    kept = files[failed]
    capsys.readouterr()

    assert main(["clean", str(runs_root), "--checkpoints", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(p.exists() for ps in files.values() for p in ps)
    assert sorted(out[:-2]) == sorted(f"would delete {p} ({human_size(p.stat().st_size)})"
                                      for p in done)
    assert out[-2] == f"would free {human_size(size(done))} in {len(done)} files under {runs_root}"

    freed = size(done)
    assert main(["clean", str(runs_root), "--checkpoints"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"freed {human_size(freed)} in {len(done)} files under {runs_root}",
        f"kept 1 file ({human_size(size(kept))}) of unfinished runs "
        "(--include-unfinished deletes them too)",
    ]
    assert not any(p.exists() for p in done) and all(p.exists() for p in kept)
    assert all((run / "dataset.npz").exists() for run in files)  # only what was asked

    kept_size = size(kept)
    assert main(["clean", str(runs_root), "--checkpoints", "--include-unfinished"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"freed {human_size(kept_size)} in 1 file under {runs_root}"]
    assert not any(p.exists() for p in kept)


def test_a_running_run_keeps_its_files_always(runs_root, capsys):
    run = grid_of(runs_root, "ok") / "L=1,potential=lp"
    ckpt = write_checkpoint(run)
    update_status(run, state="running", pid=os.getpid())
    capsys.readouterr()
    assert main(["clean", str(run.parent), "--checkpoints", "--datasets",
                 "--include-unfinished"]) == 0
    out = capsys.readouterr().out
    assert ckpt.exists() and (run / "dataset.npz").exists()
    assert "kept 2 files" in out and "of running runs" in out


def test_datasets(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    datasets = [run / "dataset.npz" for run in find_run_dirs(ok)]
    before = {run: checkpoint_files(run) for run in find_run_dirs(ok)}
    total = size(datasets)
    capsys.readouterr()
    assert main(["clean", str(ok), "--datasets"]) == 0
    assert capsys.readouterr().out.strip() == f"freed {human_size(total)} in 4 files under {ok}"
    assert not any(p.exists() for p in datasets)
    assert {run: checkpoint_files(run) for run in find_run_dirs(ok)} == before


def test_human_size():
    assert [human_size(n) for n in (0, 999, 1000, 12_345_678, 3 * 10**9)] == [
        "0 B", "999 B", "1.0 kB", "12.3 MB", "3.0 GB"]


def test_nothing_asked_is_exit_2(runs_root, capsys):
    assert main(["clean", str(runs_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--checkpoints, --datasets or both" in err
