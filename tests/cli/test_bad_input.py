"""Bad input: one line naming the key, the value and what is allowed; exit 2; nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sweeplab.cli.main import main

BASE = ["run", "implicit-bias", "--epochs", "5"]

CASES = [
    (["--potential", "entropy"], "potential", "'quadratic', 'lp' or 'hypentropy'"),
    (["--p", "1.0"], "p", "must be > 1"),
    (["--p", "0.5"], "p", "must be > 1"),
    (["--L", "0"], "L", "must be >= 1"),
    (["--lr", "0"], "lr", "must be > 0"),
    (["--lr", "-0.1"], "lr", "must be > 0"),
    (["--epochs", "0"], "epochs", "must be >= 1"),
    (["--epochs", "-3"], "epochs", "must be >= 1"),
    (["--dataset", "digits", "--digits", "3", "12"], "digits", "each in 0-9"),
    (["--dataset", "digits", "--digits", "4", "4"], "digits", "two different classes"),
    (["--pca", "2"], "pca", "smaller than the input dimension 2"),
    (["--dataset", "digits", "--pca", "64"], "pca", "smaller than the input dimension 64"),
    (["--dataset", "cifar"], "dataset", "'synthetic', 'mnist', 'fashion-mnist' or 'digits'"),
    (["--lr", "fast"], "lr", "valid number"),
    (["--learning_rate", "0.1"], "did you mean --lr?", "for all flags"),
    (["--potentail", "lp"], "did you mean --potential", "for all flags"),
    (["--digits", "1"], "--digits", "expected 2 arguments"),
]


@pytest.mark.parametrize("args,key,allowed", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, args, key, allowed):
    out = tmp_path / "runs_out"
    code = main(BASE + args + ["--out_dir", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sweeplab: error:")
    assert key in lines[0] and allowed in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_missing_dataset_files_say_where_they_looked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPLAB_DATA_DIR", raising=False)
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    code = main(BASE + ["--dataset", "mnist", "--data_dir", str(empty), "--out_dir", "ro"])
    line = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in line
    assert "mnist" in line and str(empty) in line and "--data_dir" in line
    assert not (tmp_path / "ro").exists()


def test_unknown_study_and_verb(capsys):
    assert main(["run", "no-such-study"]) == 2
    assert "implicit-bias" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "allowed verbs" in capsys.readouterr().err


def test_exit_status_2_from_a_real_process(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sweeplab", *BASE, "--p", "1", "--out_dir", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sweeplab: error: invalid p=1: must be > 1"
    assert proc.stdout == ""
    assert not Path(tmp_path / "o").exists()
