"""``sweeplab check``: every kind of damage is reported, one line per problem, exit 1."""

from __future__ import annotations

import pytest
from monitor_helpers import dead_pid, grid_of, update_status, write_checkpoint

from sweeplab.analysis.load import find_run_dirs
from sweeplab.cli.main import main
from sweeplab.core.checkpoint import checkpoint_files


def check(capsys, root) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["check", str(root)])
    return code, capsys.readouterr().out.splitlines()


def test_sound_runs_and_checkpoints_pass(runs_root, capsys):
    for run in (grid_of(runs_root, "ok") / "L=1,potential=lp",
                grid_of(runs_root, "bad") / "lr=100"):
        write_checkpoint(run)  # a failed run keeps the checkpoint that resumes it
    code, out = check(capsys, runs_root)
    assert code == 0
    assert len(out) == 1 and out[0].startswith("checked 7 runs and ")
    assert out[0].endswith(f"checkpoints under {runs_root}: no problems")


def test_each_kind_of_damage_is_one_line_naming_the_run(runs_root, capsys):
    ok, bad = grid_of(runs_root, "ok"), grid_of(runs_root, "bad")
    (single,) = [p for p in runs_root.iterdir() if p.name.endswith("_single")]

    truncated = write_checkpoint(ok / "L=1,potential=lp")
    truncated.write_bytes(truncated.read_bytes()[:500])
    write_checkpoint(ok / "L=1,potential=quadratic", config_hash="0123456789ab")
    size = (ok / "L=2,potential=lp" / "metrics.jsonl").stat().st_size
    write_checkpoint(ok / "L=2,potential=lp", offset=size + 100)
    (ok / "L=2,potential=quadratic" / "final.json").unlink()
    jsonl = bad / "lr=0.1" / "metrics.jsonl"
    rows = len(jsonl.read_text().splitlines())
    with open(jsonl, "a") as fh:
        fh.write('{"epoch": 21, "lo')  # killed mid-write
    pid = dead_pid()
    update_status(single, state="running", pid=pid)
    config_hash = update_status(ok / "L=1,potential=quadratic")["config_hash"]

    code, out = check(capsys, runs_root)
    assert code == 1
    *problems, summary = out
    n = sum(len(checkpoint_files(run)) for run in find_run_dirs(runs_root))  # with the study's
    assert summary == f"checked 7 runs and {n} checkpoints under {runs_root}: 6 problems in 6 runs"
    expected = {
        f"{ok / 'L=1,potential=quadratic'}: checkpoints/last.pt: config hash 0123456789ab "
        f"does not match config.yaml's {config_hash}",
        f"{ok / 'L=2,potential=lp'}: checkpoints/last.pt: covers {size + 100} bytes of "
        f"metrics.jsonl but the file has {size}",
        f"{ok / 'L=2,potential=quadratic'}: final.json is missing",
        f"{bad / 'lr=0.1'}: metrics.jsonl has a torn last line (line {rows + 1})",
        f"{single}: stale: status.json says running but process {pid} on "
        f"{update_status(single)['host']} is gone (a resume re-runs it)",
    }
    assert expected <= set(problems)
    (left,) = set(problems) - expected
    assert left.startswith(f"{ok / 'L=1,potential=lp'}: checkpoints/last.pt cannot be loaded: ")
    # a failed run is data, not a problem
    assert not any("lr=100" in p for p in problems)


@pytest.mark.parametrize("damage,problem", [
    ("no_provenance", "provenance.json is missing"),
    ("bad_final", "final.json is corrupt (JSONDecodeError: "),
    ("bad_line", "metrics.jsonl has a corrupt line (line 3)"),
    ("no_newline", "metrics.jsonl has a torn last line (line 21: no newline at its end)"),
    ("bad_status", "status.json is corrupt (JSONDecodeError: "),
    ("other_hash", "status.json's config hash ffffffffffff does not match config.yaml's "),
])
def test_a_finished_run_missing_or_corrupt_files(runs_root, capsys, damage, problem):
    run = grid_of(runs_root, "ok") / "L=1,potential=lp"
    jsonl = run / "metrics.jsonl"
    if damage == "no_provenance":
        (run / "provenance.json").unlink()
    elif damage == "bad_final":
        (run / "final.json").write_text('{"loss": ')
    elif damage == "bad_line":
        lines = jsonl.read_text().splitlines(keepends=True)
        lines[2] = "garbage\n"
        jsonl.write_text("".join(lines))
    elif damage == "no_newline":
        jsonl.write_text(jsonl.read_text().rstrip("\n"))
    elif damage == "bad_status":
        (run / "status.json").write_text("{")
    else:
        update_status(run, config_hash="ffffffffffff")
    code, out = check(capsys, grid_of(runs_root, "ok"))
    assert code == 1
    assert out[0].startswith(f"{run}: {problem}")
    assert out[-1].endswith("1 problem in 1 run")


def test_missing_dir_is_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "invalid dir=" in err and "no such directory" in err
