"""One run of an unchanged script (``sweeplab run --command``), and a script that keeps a
checkpoint of its own: its resumed run has every metric row once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from user_folder import losses

from sweeplab.cli.command_args import parameters
from sweeplab.cli.main import main

CKPT_SCRIPT = '''\
"""Halves x each step; keeps its position in ckpt.json and continues from it when run again.
Exits with status 3 after step 2 while a file named crash-once is beside it (and removes it)."""
import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=6)
p.add_argument("--x0", type=float, default=1.0)
args = p.parse_args()

ckpt = Path("ckpt.json")  # in the working directory: the run directory
state = json.loads(ckpt.read_text()) if ckpt.exists() else {"step": 0, "x": args.x0}
with open(HERE / "starts.txt", "a") as fh:
    fh.write(f"{state['step']}\\n")
for step in range(state["step"], args.steps):
    state["x"] /= 2
    print("SWEEPLAB_METRICS " + json.dumps({"step": step, "x": state["x"]}), flush=True)
    state["step"] = step + 1
    ckpt.write_text(json.dumps(state))
    if step == 2 and (HERE / "crash-once").exists():
        (HERE / "crash-once").unlink()
        raise SystemExit(3)
'''


def _one_run(out: Path) -> Path:
    (run,) = [p for p in out.iterdir() if (p / "config.yaml").is_file()]
    return run


def _rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_one_run_of_a_script_types_its_flags_from_their_values(user_dir, monkeypatch):
    monkeypatch.chdir(user_dir)  # train.py is found from the current folder
    out = user_dir / "out"
    assert main(["run", "--command", "python train.py", "--lr", "0.2", "--seed", "4",
                 "--out_dir", str(out), "-q"]) == 0
    run = _one_run(out)
    assert [r["loss"] for r in _rows(run)] == pytest.approx(losses(0.2, seed=4), rel=1e-12)
    header = yaml.safe_load((run / "config.yaml").read_text())
    assert header["study"] == "train.py"
    assert {k: header["config"][k] for k in ("lr", "seed")} == {"lr": 0.2, "seed": 4}
    assert header["study_ref"] == {"command": "python train.py",
                                   "params": {"lr": {"type": "float"}, "seed": {"type": "int"}}}
    assert header["cli"]["argv"][:4] == ["sweeplab", "run", "--command", "python train.py"]
    assert "step 5: x=" in (run / "logs" / "stdout.log").read_text()

    failed = user_dir / "failed"
    assert main(["run", "--command", "python train.py --mode {mode}", "--mode", "crash",
                 "--out_dir", str(failed), "-q"]) == 1
    status = json.loads((_one_run(failed) / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"].endswith("FloatingPointError: loss diverged (logs/stderr.log)")


@pytest.mark.parametrize("argv,message", [
    (["--params", "{lr: {type: float, gt: 0}}", "--lr", "-1"], "invalid lr=-1: must be > 0"),
    (["--params", "{lr: [0.1, 0.2]}", "--lr", "0.3"],
     "invalid lr=0.3: allowed values are 0.1 or 0.2"),
    (["--params", "{lr: float, seed: int}", "--lr", "0.1"],
     "invalid params.seed=None: declared without a default"),
    (["--params", "{lr: ", "--lr", "0.1"], "invalid params='{lr: ': not YAML"),
    (["0.1"], "invalid arguments=0.1: a value without a --name before it"),
    (["--lr", "0.1", "--lr", "0.2"], "invalid lr=0.1: given twice"),
    (["--learning-rate", "0.1"], "invalid learning-rate=learning-rate: a parameter name is "
                                 "letters, digits and _"),
])
def test_bad_values_of_a_command_run_are_refused_up_front(user_dir, monkeypatch, capsys,
                                                          argv, message):
    monkeypatch.chdir(user_dir)
    out = user_dir / "out"
    assert main(["run", "--command", "python train.py", *argv, "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not out.exists()
    assert not (user_dir / "calls").exists()  # the script never ran


def test_a_template_without_a_parameter_is_refused(user_dir, monkeypatch, capsys):
    monkeypatch.chdir(user_dir)
    assert main(["run", "--command", "python train.py --lr {lr}", "--lr", "0.1",
                 "--seed", "1"]) == 2
    assert "invalid seed=[1]: not used by the command template" in capsys.readouterr().err


def test_flags_are_typed_as_a_spec_types_its_values():
    assert parameters(["--lr", "0.1", "--n", "3", "--opt", "adam", "--fast", "--sizes", "8",
                       "16", "--shift", "-1", "--eps=1e-3", "--norm", "false"]) == {
        "lr": 0.1, "n": 3, "opt": "adam", "fast": True, "sizes": [8, 16], "shift": -1,
        "eps": 1e-3, "norm": False}


@pytest.mark.parametrize("keep_checkpoint", [True, False])
def test_a_script_that_resumes_from_its_own_checkpoint_logs_every_step_once(
        tmp_path, monkeypatch, keep_checkpoint):
    (tmp_path / "ckpt.py").write_text(CKPT_SCRIPT)
    (tmp_path / "crash-once").touch()
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    assert main(["run", "--command", "python ckpt.py", "--x0", "8", "--out_dir", str(out),
                 "-q"]) == 1
    run = _one_run(out)
    assert [r["step"] for r in _rows(run)] == [0, 1, 2]
    if not keep_checkpoint:  # the script starts over at step 0: its rows replace the old
        (run / "ckpt.json").unlink()

    monkeypatch.chdir(run)  # the run knows where its script is
    assert main(["run", "--resume", str(run), "-q"]) == 0
    starts = (tmp_path / "starts.txt").read_text().split()
    assert starts == (["0", "3"] if keep_checkpoint else ["0", "0"])
    rows = _rows(run)
    assert [r["step"] for r in rows] == list(range(6))
    assert [r["x"] for r in rows] == [8 / 2 ** (k + 1) for k in range(6)]
    assert json.loads((run / "final.json").read_text()) == {"x": 8 / 2 ** 6}
