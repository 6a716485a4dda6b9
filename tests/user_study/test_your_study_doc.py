"""docs/your-study.md and the README's "Your own study", run as written: their files
written, their commands run, in order.

A fenced ``python`` or ``yaml`` block whose first line is ``# NAME`` is the file NAME; a
``bash`` block is commands, each run with bash in a fresh folder (with this
interpreter's ``sweeplab`` and ``python`` first on PATH) and expected to succeed, unless
an HTML comment right before it says it is not run (a Slurm cluster). Then the outcome
the page describes is checked.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from pathlib import Path

import pytest

from process_groups import run_group

DOC = Path(__file__).resolve().parents[2] / "docs" / "your-study.md"
FENCE = re.compile(r"(<!--[^\n]*-->\n)?```(\w+)\n(.*?)```", re.S)


def doc_steps(text: str) -> list[tuple[str, str]]:
    """The page's steps in order: ``("file", block)`` to write, ``("run", command)``."""
    steps: list[tuple[str, str]] = []
    for skipped, lang, body in FENCE.findall(text):
        first = body.splitlines()[0] if body.strip() else ""
        if lang in ("python", "yaml") and re.fullmatch(r"# [\w.-]+\.(py|yaml)", first):
            steps.append(("file", body))
        elif lang == "bash" and not skipped:
            steps += [("run", line) for line in body.splitlines()
                      if line.strip() and not line.startswith("#")]
    return steps


def section(text: str, heading: str) -> str:
    """The part of a Markdown page from ``heading`` to the next heading of its level."""
    start = text.index(heading + "\n")
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", start + len(heading))
    return text[start:end if end > 0 else len(text)]


def run_steps(steps: list[tuple[str, str]], folder: Path) -> list[tuple[str, str]]:
    """Write the files and run the commands of ``steps`` in ``folder``, as a user would
    (this interpreter's ``sweeplab`` and ``python`` first on PATH, no PYTHONPATH); each
    command must succeed. ``(command, its stdout)`` of every command."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)  # the folder of the page is all the user has
    outputs = []
    for kind, payload in steps:
        if kind == "file":
            name, _, text = payload.partition("\n")
            (folder / name[2:]).write_text(text, encoding="utf-8")
            continue
        proc = run_group(["bash", "-c", payload], cwd=folder, env=env, timeout=240)
        assert proc.returncode == 0, f"{payload}\n{proc.stdout}\n{proc.stderr}"
        outputs.append((payload, proc.stdout))
    return outputs


def _states(grid: Path) -> list[str]:
    with open(grid / "master.csv") as fh:
        return [r["state"] for r in csv.DictReader(fh)]


def test_every_command_of_your_study_md_works(tmp_path):
    steps = doc_steps(DOC.read_text(encoding="utf-8"))
    assert sum(kind == "run" for kind, _ in steps) >= 8
    outputs = run_steps(steps, tmp_path)

    resumed = [out for cmd, out in outputs if cmd == "sweeplab grid mystudy.yaml --jobs 2"]
    assert len(resumed) == 2 and "12 already done, 0 to run" in resumed[1]
    (grid,) = (tmp_path / "runs_out").glob("*_mystudy")
    assert _states(grid) == ["done"] * 12
    report = tmp_path / "analysis_results" / "mystudy"
    figs = {p.name for p in (report / "figs").glob("*.png")}
    assert figs == {"curve_loss.png", "curve_acc.png", "heatmap_loss__lr_x_separation.png",
                    "heatmap_acc__lr_x_separation.png"}
    assert (report / "tables" / "final_metrics.tex").is_file()
    (train,) = (tmp_path / "runs_out").glob("*_train")
    for run in ("lr=0.05,seed=0", "lr=0.1,seed=1"):
        assert json.loads((train / run / "status.json").read_text())["state"] == "done"
        rows = (train / run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == list(range(20))
        assert "step 19: x=" in (train / run / "logs" / "stdout.log").read_text()
    train_report = tmp_path / "analysis_results" / "train"  # the script's default report
    assert {p.name for p in (train_report / "figs").glob("*.png")} == {"curve_loss.png"}
    with open(train_report / "summary.csv") as fh:
        assert sorted(float(r["lr"]) for r in csv.DictReader(fh)) == [0.05, 0.1]
    (single,) = (tmp_path / "runs_out").glob("*_train.py")  # sweeplab run --command
    assert json.loads((single / "status.json").read_text())["state"] == "done"
    assert "--seed 3" in (single / "logs" / "run.log").read_text()
    (gd_grid,) = (tmp_path / "runs_out").glob("*_gd")
    assert len([p for p in gd_grid.iterdir() if (p / "final.json").is_file()]) == 4
    help_text = next(out for cmd, out in outputs if cmd == "python gd.py --help")
    assert "--lr" in help_text and "--grid spec.yaml" in help_text


def test_the_readme_your_own_study_section_works_copy_pasted(tmp_path):
    """The Done-when of issue 16: a function file and an unchanged script, as written."""
    text = section((DOC.parents[1] / "README.md").read_text(encoding="utf-8"),
                   "## Your own study")
    steps = doc_steps(text)
    assert [name.partition("\n")[0] for kind, name in steps if kind == "file"] == [
        "# train.py", "# train.yaml"]
    run_steps(steps, tmp_path)
    runs_out = tmp_path / "runs_out"
    (study_grid,) = runs_out.glob("*_mystudy")
    assert _states(study_grid) == ["done"] * 12
    (script_grid,) = runs_out.glob("*_train")
    assert _states(script_grid) == ["done"] * 4
    rows = (script_grid / "lr=0.1,seed=1" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(rows[-1])["loss"] == pytest.approx((2 * 0.8 ** 20) ** 2)
    (single,) = runs_out.glob("*_train.py")
    assert json.loads((single / "status.json").read_text())["state"] == "done"
    for grid in (study_grid, script_grid):
        assert (tmp_path / "analysis_results" / grid.name / "report.md").is_file()
