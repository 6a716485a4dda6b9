"""``sweeplab errors``: failed, interrupted and stale runs with their tracebacks."""

from __future__ import annotations

from monitor_helpers import dead_pid, grid_of, update_status

from sweeplab.cli.main import main


def errors(capsys, *args) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = main(["errors", *map(str, args)])
    return code, capsys.readouterr().out.splitlines()


def test_a_failed_run_is_listed_with_its_traceback(runs_root, capsys):
    bad = grid_of(runs_root, "bad")
    code, out = errors(capsys, runs_root)
    assert code == 1
    assert out[0] == (f"failed {bad / 'lr=100'}: "
                      "NonFiniteError: training loss became non-finite at step 2")
    assert out[1] == "    Traceback (most recent call last):"
    assert ("    sweeplab.errors.NonFiniteError: training loss became non-finite at step 2"
            in out)
    assert out[-1] == f"1 failed of 7 runs under {runs_root}"
    code, out = errors(capsys, runs_root, "--lines", "0")
    assert out == [out[0], f"1 failed of 7 runs under {runs_root}"]


def test_interrupted_and_stale_runs_say_how_to_resume(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    (single,) = [p for p in runs_root.iterdir() if p.name.endswith("_single")]
    update_status(ok / "L=2,potential=lp", state="failed", interrupted=True,
                  error="KeyboardInterrupt: signal 15")
    update_status(single, state="running", pid=dead_pid())
    code, out = errors(capsys, runs_root, "-n", "0")
    assert code == 1
    i = out.index(f"interrupted {ok / 'L=2,potential=lp'}: KeyboardInterrupt: signal 15")
    assert out[i + 1] == f"    interrupted: resume it: sweeplab grid --resume {ok}"
    j = [k for k, line in enumerate(out) if line.startswith(f"stale {single}: process ")][0]
    assert out[j + 1].startswith("    stale: resume it") and f"run --resume {single}" in out[j + 1]
    assert out[-1] == f"1 failed, 1 interrupted, 1 stale of 7 runs under {runs_root}"


def test_no_failed_runs_is_exit_0(runs_root, capsys):
    ok = grid_of(runs_root, "ok")
    code, out = errors(capsys, ok)
    assert code == 0 and out == [f"no failed runs (4 runs under {ok})"]


def test_bad_input_is_exit_2(runs_root, capsys):
    assert main(["errors", str(runs_root / "nope")]) == 2
    assert "invalid dir=" in capsys.readouterr().err
    assert main(["errors", str(runs_root), "--lines", "-2"]) == 2
    assert "invalid lines=-2: an integer >= 0" in capsys.readouterr().err
