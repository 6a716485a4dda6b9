"""The CLI as a newcomer meets it: usage on empty input, exact flags with "did you mean",
short error lines, help that reads cleanly at 80 columns, and the next command to type.

Each test runs the real ``sweeplab`` (in-process ``main``, or a real process where the
terminal width matters) and asserts the text and exit status a user sees.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sweeplab.cli.main import main

VERBS_WITH_HELP = [["run", "implicit-bias"], ["run", "anchor-composite"],
                   ["run", "minima-volume"], ["grid"], ["analyze"], ["ls"], ["status"],
                   ["errors"], ["logs"], ["check"], ["clean"], ["new"], ["agent"]]


def sweeplab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``sweeplab ARGS`` in a real process with an 80-column terminal."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "sweeplab", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd)


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sweeplab: error: ")
    return lines[0]


def test_nothing_after_sweeplab_or_run_is_usage_and_exit_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: sweeplab VERB" in err and "give a verb" in err
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "usage: sweeplab run STUDY" in err and "give a study" in err
    assert main(["--help"]) == 0 and main(["run", "--help"]) == 0


def test_top_level_help_fits_80_columns():
    proc = sweeplab("--help")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    # every verb line is whole: name and description on one line
    assert any(line.startswith("  analyze DIR") and "report" in line for line in lines)


@pytest.mark.parametrize("flag,meant", [("--epoch", "--epochs"),
                                        ("--learning-rate", "--lr"),
                                        ("--learning_rate", "--lr"),
                                        ("--depth", "--L"),
                                        ("--n-epochs", "--epochs")])
def test_flags_are_exact_and_unknown_ones_get_a_short_suggestion(tmp_path, capsys, flag, meant):
    code = main(["run", "implicit-bias", flag, "10", "--out_dir", str(tmp_path / "o")])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert f"unknown flag '{flag}' (did you mean {meant}?)" in line
    assert "see 'sweeplab run implicit-bias --help' for all flags" in line
    assert len(line) < 160 and line.count("--") < 5, line   # no list of every flag
    assert not (tmp_path / "o").exists()


def test_other_studies_suggest_by_their_own_aliases(tmp_path, capsys):
    code = main(["run", "anchor-composite", "--depth", "3", "--out_dir", str(tmp_path)])
    assert code == 2
    assert "(did you mean --n_layers?)" in one_error_line(capsys.readouterr().err)


def test_verbs_and_studies_get_did_you_mean(capsys):
    assert main(["anlyze"]) == 2
    assert "(did you mean analyze?)" in one_error_line(capsys.readouterr().err)
    assert main(["run", "implicit-bais"]) == 2
    assert "(did you mean implicit-bias?)" in one_error_line(capsys.readouterr().err)


def _write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.mark.parametrize("spec,expect", [
    ({"depth": [1, 2], "seeds": [0]}, "invalid depth=[1, 2]: unknown key of the flat "
     "implicit-bias spec (did you mean depths?)"),
    ({"study": "implicit-bias", "grid": {"depths": [1, 2]}},
     "invalid grid.depths=[1, 2]: not a parameter of study implicit-bias (did you mean L?)"),
    ({"study": "implicit-bias", "fixed": {"learning_rate": 0.1}, "grid": {"seed": [0, 1]}},
     "not a parameter of study implicit-bias (did you mean lr?)"),
    ({"study": "implicit-bias", "grids": {"seed": [0, 1]}},
     "unknown top-level key (did you mean grid?)"),
    ({"study": "anchor-composit", "grid": {"seed": [0, 1]}},
     "unknown study (did you mean anchor-composite?)"),
])
def test_spec_key_typos_suggest_the_closest_key(tmp_path, capsys, spec, expect):
    path = _write(tmp_path / "spec.yaml", spec)
    assert main(["grid", str(path), "--out_dir", str(tmp_path / "o")]) == 2
    assert expect in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_a_missing_spec_suggests_the_closest_existing_file(tmp_path, capsys):
    (tmp_path / "configs").mkdir()
    _write(tmp_path / "configs" / "quick_debug.yaml", {"seeds": [0]})
    for typo in ("configs/quick_debg.yaml", "config/quick_debug.yaml"):
        assert main(["grid", str(tmp_path / typo)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"(did you mean {tmp_path / 'configs' / 'quick_debug.yaml'}?)" in line, line
    assert main(["grid", str(tmp_path / "unrelated.yaml")]) == 2
    assert "did you mean" not in capsys.readouterr().err


@pytest.mark.parametrize("verb", VERBS_WITH_HELP, ids=" ".join)
def test_help_shows_each_default_once_and_no_markup(verb):
    proc = sweeplab(*verb, "--help")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "``" not in text and ":func:" not in text
    assert "(default: None)" not in text
    # a default said in the help text and again by argparse
    assert not re.search(r"\(default:[^()]*(\([^()]*\))?[^()]*\)\s*\(default:", text), text


def test_help_defaults_are_not_repeated():
    text = " ".join(sweeplab("grid", "--help").stdout.split())
    assert "the config's file name) (default" not in text
    text = " ".join(sweeplab("run", "implicit-bias", "--help").stdout.split())
    assert text.count("(default: 1000)") == 1   # epochs


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A finished 2-run grid made by the real CLI, and what the grid command printed."""
    tmp = tmp_path_factory.mktemp("usability")
    spec = _write(tmp / "tiny.yaml", {"study": "implicit-bias",
                                      "fixed": {"epochs": 10, "plots": False, "n_samples": 32},
                                      "grid": {"potential": ["quadratic", "lp"]}})
    proc = sweeplab("grid", str(spec), "--out_dir", str(tmp / "runs_out"),
                    "--executor", "inline")
    assert proc.returncode == 0, proc.stderr
    (grid_dir,) = (tmp / "runs_out").iterdir()
    return grid_dir, proc.stdout


def test_grid_and_run_end_with_the_next_command(tiny_grid, tmp_path):
    grid_dir, out = tiny_grid
    assert out.strip().splitlines()[-1] == f"next: sweeplab analyze {grid_dir}"
    proc = sweeplab("run", "implicit-bias", "--epochs", "5", "--plots", "false",
                    "--out_dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = tmp_path.iterdir()
    assert proc.stdout.strip().splitlines()[-1] == f"next: sweeplab analyze {run_dir}"


def test_analyze_takes_the_directory_as_a_positional_argument(tiny_grid, tmp_path):
    grid_dir, _ = tiny_grid
    out = tmp_path / "analysis"
    proc = sweeplab("analyze", str(grid_dir), "--output_dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "analysed 2 runs" in proc.stdout and (out / "report.md").is_file()
    proc = sweeplab("analyze")
    assert proc.returncode == 2
    assert "sweeplab analyze DIR" in one_error_line(proc.stderr)
