"""Study references and the command study's pieces, in this process: parsing, argv, types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sweeplab.core.command import command_study
from sweeplab.core.grid import DEFAULT
from sweeplab.core.study_ref import split_ref
from sweeplab.errors import ConfigError


@pytest.mark.parametrize("ref,expected", [
    ("implicit-bias", ("name", "implicit-bias", "")),
    ("./mystudy.py:run", ("file", "./mystudy.py", "run")),
    ("mystudy.py", ("file", "mystudy.py", "")),
    ("src/exp/mystudy.py:my-study", ("file", "src/exp/mystudy.py", "my-study")),
    ("/abs/train.py:main", ("file", "/abs/train.py", "main")),
    ("mypkg.train:run", ("module", "mypkg.train", "run")),
])
def test_a_reference_says_what_it_names(ref, expected):
    assert split_ref(ref) == expected


def test_flags_follow_the_command_and_files_of_the_spec_folder_become_paths(tmp_path):
    (tmp_path / "train.py").write_text("")
    study = command_study({"command": "python train.py --fixed 1"}, str(tmp_path),
                          {"lr": [0.1, 1], "aug": [True, False], "layers": [[2, 3]],
                           "tag": ["a", DEFAULT]})
    spec = study.fn.args[0]
    cfg = study.config.from_mapping({"lr": 1, "aug": True, "layers": [2, 3]})
    values = {k: v for k, v in cfg.canonical().items() if k in spec.params}
    assert spec.argv(values, "/runs/r") == [
        sys.executable, str(tmp_path / "train.py"), "--fixed", "1",
        "--lr", "1.0", "--aug", "--layers", "2", "3"]  # aug=False and tag=None: no flag
    assert study.config.model_fields["lr"].annotation is float  # ints and floats: float
    assert study.config.from_mapping({"lr": 0.1, "aug": False, "layers": []}).tag is None


def test_a_template_is_filled_and_an_empty_placeholder_word_dropped(tmp_path):
    study = command_study({"command": "bin/train --lr={lr:.2g} {flag} --out {run_dir}",
                           "params": {"lr": "float", "flag": ["--fast", ""]}},
                          str(tmp_path))
    spec = study.fn.args[0]
    assert spec.argv({"lr": 0.123, "flag": ""}, "/runs/r") == [
        "bin/train", "--lr=0.12", "--out", "/runs/r"]
    assert spec.argv({"lr": 1e-5, "flag": "--fast"}, "/r")[1:3] == ["--lr=1e-05", "--fast"]
    with pytest.raises(ConfigError,
                       match=r"invalid flag=--slow: allowed values are '--fast' or ''"):
        study.config.from_mapping({"lr": 0.1, "flag": "--slow"})


def test_the_complete_reference_resolves_the_same_study_anywhere(tmp_path):
    study = command_study({"command": "python t.py"}, str(tmp_path), {"lr": [0.1, 0.2]})
    again = command_study(study.ref, str(tmp_path))  # what a worker gets: no grid values
    assert again.ref == study.ref == {"command": "python t.py",
                                      "params": {"lr": {"type": "float"}}}
    cfg = study.config.from_mapping({"lr": 0.1})
    assert again.config.from_mapping({"lr": 0.1}).config_hash() == cfg.config_hash()
    assert json.loads(json.dumps(study.ref)) == study.ref  # plain data


def test_sweeplab_log_is_silent_outside_sweeplab_and_imports_nothing_heavy(tmp_path):
    code = ("import sys, sweeplab; sweeplab.log(0, loss=1.0); sweeplab.final(acc=1.0); "
            "print(sorted(m for m in ('numpy', 'pydantic', 'torch', 'yaml') if m in sys.modules))")
    env = {"PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "[]\n" and proc.stderr == ""
    assert list(tmp_path.iterdir()) == []

    target = tmp_path / "metrics.jsonl"
    code = "import sweeplab; sweeplab.log(3, loss=0.5); sweeplab.final(acc=0.9)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "SWEEPLAB_METRICS": str(target)}, timeout=60)
    assert proc.returncode == 0 and proc.stdout == ""
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert lines == [{"step": 3, "loss": 0.5}, {"final": {"acc": 0.9}}]


def test_a_function_without_a_typed_config_is_refused_with_the_fix(tmp_path):
    from sweeplab.core.registry import resolve_study

    (tmp_path / "untyped.py").write_text("def run(cfg, ctx):\n    return {}\n")
    with pytest.raises(ConfigError, match=r"type its first parameter with the config: "
                                          r"def run\(cfg: MyConfig, ctx\)"):
        resolve_study("./untyped.py:run", str(tmp_path))
    (tmp_path / "broken.py").write_text("import nosuchmodule_xyz\n")
    with pytest.raises(ConfigError, match=r"importing .*broken.py failed: "
                                          r"ModuleNotFoundError: No module named"):
        resolve_study("./broken.py:run", str(tmp_path))
    assert "broken" not in sys.modules
    assert str(Path(tmp_path)) in sys.path  # the file's folder, for its own imports
