"""A one-file study of the user's own, found by path: one run, a grid, resume, the report."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from user_folder import losses, sweeplab

from sweeplab.cli.main import main
from sweeplab.core.run_dirs import find_run_dirs
from sweeplab.errors import show_value


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_one_run_by_path_logs_what_the_function_computes_and_resumes(user_dir):
    proc = sweeplab(user_dir, "run", "./mystudy.py:run", "--lr", "0.2", "--seed", "3", "-q")
    assert proc.returncode == 0, proc.stderr
    run_dir = user_dir / proc.stdout.strip()
    expected = losses(0.2, seed=3)
    assert [r["loss"] for r in _rows(run_dir)] == pytest.approx(expected, rel=1e-12)
    assert [r["epoch"] for r in _rows(run_dir)] == list(range(6))
    assert json.loads((run_dir / "final.json").read_text())["loss"] == pytest.approx(expected[-1])
    header = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert header["study"] == "mystudy:run" and header["config"]["lr"] == 0.2
    assert header["study_ref"] == "./mystudy.py:run"
    assert Path(header["study_dir"]) == user_dir.resolve()

    again = sweeplab(user_dir, "run", "--resume", str(run_dir))  # found again by its ref
    assert again.returncode == 0, again.stderr
    assert "already done" in again.stdout


def test_grid_of_a_file_study_on_local_workers_then_the_default_report(user_dir):
    spec = {"study": "./mystudy.py:run", "fixed": {"steps": 6},
            "grid": {"lr": [0.05, 0.1], "noise": [0.0, 0.3], "seed": [0, 1]}}
    (user_dir / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = sweeplab(user_dir, "grid", "spec.yaml", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert "8 runs of mystudy:run" in proc.stdout
    (grid,) = (user_dir / "runs_out").glob("*_spec")
    with open(grid / "master.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and {r["state"] for r in rows} == {"done"}
    for r in rows:  # each ran the user's function with its own parameters
        expected = losses(float(r["lr"]), noise=float(r["noise"]), seed=int(r["seed"]))
        assert float(r["final.loss"]) == pytest.approx(expected[-1], rel=1e-12)
    pids = {pid for p in (user_dir / "calls").iterdir() for pid in p.read_text().split()}
    assert 1 <= len(pids) <= 2  # two warm workers imported the file and ran all eight

    again = sweeplab(user_dir, "grid", "spec.yaml", "--jobs", "2")
    assert again.returncode == 0 and "8 already done, 0 to run" in again.stdout
    elsewhere = sweeplab(user_dir.parent, "grid", "--resume", str(grid))  # ref from grid.json
    assert elsewhere.returncode == 0 and "8 already done, 0 to run" in elsewhere.stdout

    report = sweeplab(user_dir, "analyze", str(grid), "--output_dir", "report")
    assert report.returncode == 0, report.stderr
    out = user_dir / "report"
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 and set(summary["count"]) == {2}  # seeds aggregated
    for _, cond in summary.iterrows():
        finals = [losses(cond["lr"], noise=cond["noise"], seed=s)[-1] for s in (0, 1)]
        assert cond["loss_mean"] == pytest.approx(sum(finals) / 2, rel=1e-9)
        spread = abs(finals[0] - finals[1]) / math.sqrt(2)  # sample std of two values
        assert cond["loss_std"] == pytest.approx(spread, rel=1e-9, abs=1e-15)
    curves = pd.read_csv(out / "curves.csv")
    lr01 = curves[(curves["lr"] == 0.1) & (curves["noise"] == 0.3)].sort_values("epoch")
    per_seed = [losses(0.1, noise=0.3, seed=s) for s in (0, 1)]
    assert list(lr01["epoch"]) == list(range(6))
    assert list(lr01["loss_mean"]) == pytest.approx([(a + b) / 2 for a, b in zip(*per_seed)])
    figs = {p.name for p in (out / "figs").glob("*.png")}
    assert figs == {"curve_loss.png", "heatmap_loss__lr_x_noise.png"}
    latex = (out / "tables" / "final_metrics.tex").read_text()
    assert "\\begin{tabular}" in latex and latex.count("lr=") == 4
    assert "conditions differ in lr, noise" in (out / "report.md").read_text()


def test_a_registered_function_and_a_module_are_found_from_the_spec_folder(tmp_path, capsys):
    project = tmp_path / "project"
    (project / "mypkg").mkdir(parents=True)
    (project / "mypkg" / "__init__.py").write_text("")
    (project / "mypkg" / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (project / "mypkg" / "train.py").write_text(
        "from sweeplab import RunContext, StudyConfig, register_study\n"
        "from mypkg.helpers import double\n\n\n"
        "class Cfg(StudyConfig):\n    x: int = 1\n\n\n"
        "@register_study('own-registered-study', config=Cfg)\n"
        "def registered(cfg: Cfg, ctx: RunContext):\n"
        "    ctx.log(0, y=double(cfg.x))\n    return {'y': double(cfg.x)}\n\n\n"
        "def run(cfg: Cfg):\n"
        "    import sweeplab\n    sweeplab.log(0, y=3 * cfg.x)\n"
    )
    out = tmp_path / "out"
    for tag, ref, factor in (("byname", "./mypkg/train.py:own-registered-study", 2),
                             ("bymodule", "mypkg.train:run", 3)):
        spec = project / f"{tag}.yaml"
        spec.write_text(yaml.safe_dump({"study": ref, "grid": {"x": [1, 2]}}))
        assert main(["grid", str(spec), "--executor", "inline", "--out_dir", str(out)]) == 0, \
            capsys.readouterr()
        (grid,) = out.glob(f"*_{tag}")
        for x in (1, 2):
            final = json.loads((grid / f"x={x}" / "final.json").read_text())
            assert final == {"y": factor * x}


@pytest.mark.parametrize("ref,message", [
    ("./nosuch.py:run", "file "),
    ("./mystudy.py:runn", "has no function 'runn' (did you mean run?)"),
    ("my-study", "a study of your own: ./file.py:function or package.module:function"),
    ("nosuchpkg.train:run", "no module 'nosuchpkg'"),
    ("own-study", "not installed; own.py registers it, so name it by its file: "
                  "./own.py:own-study"),
    ("./train.py", "train.py has no function 'run' and runs code when imported (a script?); "
                   'a script runs unchanged as a command: sweeplab run --command "python '
                   'train.py" [--its flags] (in a spec: command: python train.py)'),
    ("python train.py", "not a file and function (./train.py:run); a script runs unchanged"),
    ("./half.py:run", "half.py ran it and it exited (2); put its script part under if "
                      "__name__ == '__main__':, or a script runs unchanged as a command"),
])
def test_a_study_reference_that_finds_nothing_is_one_line(user_dir, capsys, ref, message):
    (user_dir / "own.py").write_text(  # read for the hint, never imported
        "from sweeplab import StudyConfig, register_study\n\n\n"
        "@register_study('own-study', config=StudyConfig)\ndef run(cfg, ctx):\n"
        "    raise SystemExit('imported')\n")
    (user_dir / "half.py").write_text(  # a study function below a script's argparse
        "import argparse\n\np = argparse.ArgumentParser()\np.add_argument('--lr')\n"
        "args = p.parse_args()\n\n\ndef run(cfg, ctx):\n    return {}\n")
    spec = user_dir / "spec.yaml"
    spec.write_text(yaml.safe_dump({"study": ref, "grid": {"lr": [0.1, 0.2]}}))
    out = user_dir / "out"
    assert main(["grid", str(spec), "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"invalid study={show_value(ref)}" in err and message in err, err
    assert not out.exists() or find_run_dirs(out) == []
    assert not (user_dir / "calls").exists()  # train.py was never run


def test_bad_values_are_refused_before_anything_runs(user_dir, capsys):
    proc = sweeplab(user_dir, "run", "./mystudy.py:run", "--lr", "-1")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sweeplab: error: invalid lr=-1: must be > 0"
    assert not (user_dir / "runs_out").exists()

    spec = user_dir / "spec.yaml"
    spec.write_text(yaml.safe_dump({"study": "./mystudy.py:run",
                                    "grid": {"lr": [0.1, -0.5], "seed": [0, 1]}}))
    out = user_dir / "out"
    assert main(["grid", str(spec), "--out_dir", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "run lr=-0.5,seed=0: invalid lr=-0.5: must be > 0" in err
    assert not out.exists() or find_run_dirs(out) == []
    assert not (user_dir / "calls").exists()  # the function never ran


OWN_ANALYSIS = '''\
from sweeplab import RunContext, StudyConfig, register_study
from sweeplab.analysis.spec import StudyAnalysis


class Cfg(StudyConfig):
    a: int = 1
    b: int = 1
    seed: int = 0


def findings(data):
    return [f"own finding: {len(data.finals)} conditions of {len(data.runs)} runs"]


@register_study("own-analysed", config=Cfg,
                analysis=StudyAnalysis(group_keys=("a",), final_metrics=("y",),
                                       findings=findings))
def analysed(cfg: Cfg, ctx: RunContext):
    return {"y": cfg.a * cfg.b + cfg.seed}


@register_study("own-grouped", config=Cfg, group_keys=("b",))
def grouped(cfg: Cfg, ctx: RunContext):
    return {"y": cfg.a * cfg.b + cfg.seed}
'''


@pytest.mark.parametrize("ref,key,finding", [
    ("./own.py:own-analysed", "a", "own finding: 2 conditions of 8 runs"),
    ("./own.py:own-grouped", "b", None),
])
def test_a_study_of_ones_own_declares_its_analysis_or_its_conditions(tmp_path, capsys, ref,
                                                                     key, finding):
    (tmp_path / "own.py").write_text(OWN_ANALYSIS)
    spec = tmp_path / "own.yaml"
    spec.write_text(yaml.safe_dump({"study": ref, "grid": {"a": [1, 2], "b": [1, 2],
                                                           "seed": [0, 1]}}))
    out, report = tmp_path / "out", tmp_path / "report"
    assert main(["grid", str(spec), "--executor", "inline", "--out_dir", str(out)]) == 0
    (grid,) = out.iterdir()
    assert main(["analyze", str(grid), "--output_dir", str(report)]) == 0, capsys.readouterr()
    summary = pd.read_csv(report / "summary.csv")
    assert list(summary[key]) == [1, 2] and list(summary["y_count"]) == [4, 4]
    text = (report / "report.md").read_text()
    assert (finding in text) if finding else "No study-specific findings" in text


OUTCOMES = '''\
import numpy as np

import sweeplab
from sweeplab import StudyConfig


class Cfg(StudyConfig):
    mode: str = "ok"


@sweeplab.main(Cfg)
def main(cfg: Cfg):
    for step in range(3):
        if cfg.mode == "ok":
            sweeplab.log(step, loss=np.float64(1.0 / (step + 1)))
        if cfg.mode == "garbage":
            sweeplab.log(step, loss=0.5, note="high")
    if cfg.mode == "crash":
        raise FloatingPointError("loss diverged")
    if cfg.mode == "wrong":
        return "loss was 0.1"
'''


def test_each_outcome_of_a_function_is_recorded_as_data(tmp_path, capsys):
    (tmp_path / "outcomes.py").write_text(OUTCOMES)
    spec = tmp_path / "outcomes.yaml"
    spec.write_text(yaml.safe_dump({"study": "./outcomes.py:main",
                                    "grid": {"mode": ["ok", "crash", "garbage", "silent",
                                                      "wrong"]}}))
    out = tmp_path / "out"
    assert main(["grid", str(spec), "--executor", "inline", "--out_dir", str(out)]) == 1
    (grid,) = out.iterdir()
    with open(grid / "master.csv") as fh:
        states = {r["run"]: r["state"] for r in csv.DictReader(fh)}
    assert states == {"mode=ok": "done", "mode=crash": "failed", "mode=garbage": "done",
                      "mode=silent": "done", "mode=wrong": "failed"}

    def final(mode: str) -> dict:
        return json.loads((grid / f"mode={mode}" / "final.json").read_text())

    def error(mode: str) -> str:
        return json.loads((grid / f"mode={mode}" / "status.json").read_text())["error"]

    assert final("ok") == {"loss": pytest.approx(1 / 3)}
    assert error("crash") == "FloatingPointError: loss diverged"
    assert [r["note"] if "note" in r else None for r in _rows(grid / "mode=garbage")] == \
        [None] * 3  # the string never reached metrics.jsonl
    assert final("garbage")["loss"] == 0.5
    assert final("garbage")["warnings"] == [
        f"sweeplab.log at step {s}: note='high' is not a number; ignored" for s in range(3)]
    assert final("silent")["warnings"] == [
        "the run reported no metrics; call sweeplab.log(step, loss=...) or return them, "
        "e.g. {'loss': 0.1}"]
    assert error("wrong") == ("TypeError: main returned 'loss was 0.1' (str); return the final "
                              "metrics as a dict, e.g. {'loss': 0.1}, or None")
