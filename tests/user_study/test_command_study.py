"""An unchanged argparse script as a study: metrics, outcomes, bad values, SIGTERM."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from user_folder import calls, losses

from process_groups import started
from sweeplab.cli.main import main
from sweeplab.core.run_dirs import find_run_dirs


def _spec(folder: Path, name: str, spec: dict) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def test_each_outcome_of_a_script_is_recorded_as_data(user_dir, capsys):
    spec = _spec(user_dir, "modes", {
        "command": "python train.py",
        "fixed": {"lr": 0.1, "seed": 0},
        "grid": {"mode": ["ok", "crash", "garbage", "silent", "helper"]},
    })
    out = user_dir / "out"
    assert main(["grid", str(spec), "--executor", "inline", "--out_dir", str(out)]) == 1
    (grid,) = out.glob("*_modes")
    with open(grid / "master.csv") as fh:
        states = {r["run"]: r["state"] for r in csv.DictReader(fh)}
    assert states == {"mode=ok": "done", "mode=crash": "failed", "mode=garbage": "done",
                      "mode=silent": "failed", "mode=helper": "done"}
    expected = losses(0.1)

    ok = grid / "mode=ok"
    rows = [json.loads(x) for x in (ok / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(6))
    assert [r["loss"] for r in rows] == pytest.approx(expected, rel=1e-12)
    assert json.loads((ok / "final.json").read_text()) == pytest.approx({"loss": expected[-1]})
    assert "step 5: x=" in (ok / "logs" / "stdout.log").read_text()
    header = yaml.safe_load((ok / "config.yaml").read_text())
    assert header["study"] == "train.py" and header["config"]["mode"] == "ok"

    crash = _status(grid / "mode=crash")
    assert crash["error"] == ("CommandFailed: the command exited with status 1: "
                              "FloatingPointError: loss diverged (logs/stderr.log)")
    assert "Traceback" in (grid / "mode=crash" / "logs" / "stderr.log").read_text()

    garbage = json.loads((grid / "mode=garbage" / "final.json").read_text())
    assert garbage["loss"] == pytest.approx(expected[-1]) and garbage["best"] == 0.5
    assert len(garbage["warnings"]) == 2
    assert garbage["warnings"][0].startswith("malformed metric line ignored: stdout line 13: "
                                             "not a JSON object")
    assert "loss='high' is not a number" in garbage["warnings"][1]
    rows = (grid / "mode=garbage" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 6  # the malformed lines added nothing

    silent = _status(grid / "mode=silent")
    assert "exited 0 but reported no metrics" in silent["error"]
    assert "SWEEPLAB_METRICS" in silent["error"]  # says how to report them

    helper = json.loads((grid / "mode=helper" / "final.json").read_text())
    assert helper == pytest.approx({"loss": expected[-1], "best": 0.25})  # sweeplab.log, .final
    assert (grid / "mode=helper" / "logs" / "stdout.log").read_text() == ""  # nothing printed


def test_a_template_and_a_params_schema_type_the_values(user_dir, capsys):
    spec = _spec(user_dir, "tpl", {
        "command": "python train.py --lr={lr} --steps {steps} --seed {seed}",
        "params": {"lr": {"type": "float", "gt": 0}, "steps": {"type": "int", "default": 3},
                   "seed": "int"},
        "grid": {"lr": [0.1, 0.2], "seed": [4]},
    })
    out = user_dir / "out"
    assert main(["grid", str(spec), "--executor", "inline", "--out_dir", str(out)]) == 0
    (grid,) = out.glob("*_tpl")
    final = json.loads((grid / "lr=0.2" / "final.json").read_text())
    assert final["loss"] == pytest.approx(losses(0.2, steps=3, seed=4)[-1], rel=1e-12)


@pytest.mark.parametrize("spec,message", [
    ({"command": "python train.py", "params": {"lr": {"type": "float", "gt": 0}},
      "grid": {"lr": [0.1, -1]}}, "run lr=-1: invalid lr=-1: must be > 0"),
    ({"command": "python train.py", "grid": {"lr": [0.1, "fast"]}},
     "invalid lr=[0.1, 'fast']: values of one parameter must share a type"),
    ({"command": "python train.py --lr {lrr}", "grid": {"lr": [0.1, 0.2]}},
     "invalid command={lrr}: uses a parameter the spec does not set (did you mean lr?)"),
    ({"command": "python train.py --lr {lr}", "grid": {"lr": [0.1], "seed": [0, 1]}},
     "invalid seed=[0, 1]: not used by the command template"),
    ({"command": "python train.py", "params": {"lr": "float"}, "grid": {"lr": [0.1],
                                                                      "seed": [0, 1]}},
     "invalid grid.seed=[0, 1]: not a parameter of study train.py; allowed keys: lr"),
    ({"command": "python train.py", "params": {"lr": "double"}, "grid": {"lr": [0.1]}},
     "invalid params.lr.type=double: allowed values are float, int, str, bool, list"),
    ({"command": "python train.py", "params": {"lr": "float", "seed": "int"},
      "grid": {"lr": [0.1]}}, "invalid params.seed=None: declared without a default"),
    ({"study": {"command": "python train.py", "parms": {}}, "grid": {"lr": [0.1]}},
     "invalid study.parms={}: unknown key of a command study (did you mean params?)"),
])
def test_bad_command_studies_are_refused_up_front(user_dir, capsys, spec, message):
    path = _spec(user_dir, "bad", spec)
    out = user_dir / "out"
    assert main(["grid", str(path), "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
    assert not out.exists() or find_run_dirs(out) == []
    assert not (user_dir / "calls").exists()  # the script never ran


def test_sigterm_reaches_the_script_and_a_resume_runs_it_again(user_dir):
    spec = _spec(user_dir, "slow", {"command": "python train.py", "grid": {"seed": [7]}})
    (user_dir / "hold-7").touch()  # the script waits while this file exists
    cmd = [sys.executable, "-m", "sweeplab", "grid", str(spec), "--jobs", "1"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with started(cmd, cwd=user_dir, env=env, stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE, text=True) as driver:
        while not calls(user_dir, "run"):  # a grid of one run names it "run"
            assert driver.poll() is None, driver.communicate()
            time.sleep(0.05)
        script = int((user_dir / "calls" / "run.txt").read_text().split()[0])
        os.kill(driver.pid, signal.SIGTERM)
        out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "interrupted" in err and "sweeplab grid --resume" in err
    with pytest.raises(ProcessLookupError):  # the script ended with the run
        os.kill(script, 0)
    (grid,) = (user_dir / "runs_out").glob("*_slow")
    status = _status(grid / "run")
    assert status["state"] == "failed" and status["interrupted"] is True
    assert "SIGTERM" in status["error"]

    (user_dir / "hold-7").unlink()
    resumed = subprocess.run(cmd, cwd=user_dir, env=env, capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert _status(grid / "run")["state"] == "done" and calls(user_dir, "run") == 2
