"""A grid given no --executor runs inline or on local workers, chosen by its work and said
in its first line; --executor still decides (issue 17)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import toy_studies  # noqa: F401 - registers toy-batch; workers import it themselves
import yaml

from sweeplab import RunContext, StudyConfig, register_study
from sweeplab.core.grid import parse_grid_spec
from sweeplab.core.rundir import FINAL_FILE, RunStatus, save_json, write_status
from sweeplab.execute.choose import STARTUP_S, Choice, Work, choose_executor, describe_work
from sweeplab.execute.sweep import plan_grid


class CostConfig(StudyConfig):
    """``seconds``: what the study's cost hint says one run takes."""

    seconds: float = 1.0
    seed: int = 0


@register_study("toy-cost", config=CostConfig, cost=lambda cfg: cfg.seconds)
def cost_study(cfg: CostConfig, ctx: RunContext) -> dict[str, float]:
    """Does nothing; only its cost hint matters."""
    return {"seconds": cfg.seconds}


class GroupedCostConfig(StudyConfig):
    """``seconds`` as in toy-cost; runs of one ``group`` share a batch."""

    seconds: float = 1.0
    group: str = "a"


@register_study("toy-cost-batched", config=GroupedCostConfig, cost=lambda cfg: cfg.seconds,
                batch_key=lambda cfg: cfg.group,
                run_batch=lambda cfgs, ctxs: [{"seconds": c.seconds} for c in cfgs])
def grouped_cost_study(cfg: GroupedCostConfig, ctx: RunContext) -> dict[str, float]:
    """Does nothing; only its cost hint and batch key matter."""
    return {"seconds": cfg.seconds}


@pytest.mark.parametrize(("work", "slots", "choice"), [
    (Work(0, 0, 0.0), 4, Choice("inline", "nothing to run")),
    (Work(30, 30, None), 1, Choice("inline", "one job slot")),
    (Work(1, 1, None), 4, Choice("inline", "one run")),
    (Work(12, 1, None, splits=1), 4, Choice("inline", "one batched unit")),
    (Work(12, 1, None, splits=4), 4, Choice("local", "12 runs", workers=4)),  # cut in 4
    (Work(12, 1, 4.0, splits=2), 2, Choice("inline", "~4s of work")),
    (Work(12, 12, 9.0), 2, Choice("inline", "~9s of work")),  # saves 4.5 s < STARTUP_S
    (Work(12, 12, 11.0), 2, Choice("local", "12 runs, ~11s of work", workers=2)),
    (Work(12, 2, 9.0), 16, Choice("inline", "~9s of work")),  # 2 units: 2 in parallel at most
    (Work(30, 30, None), 2, Choice("local", "30 runs", workers=2)),  # unknown: workers
])
def test_each_branch_of_the_choice(work, slots, choice):
    assert STARTUP_S == 5.0  # the figures above are chosen around it
    assert choose_executor(work, slots) == choice
    assert choose_executor(work, slots) == choose_executor(work, slots)  # deterministic


def _plan(tmp_path: Path, grid: dict):
    spec = parse_grid_spec({"study": "toy-cost", "grid": grid})
    return plan_grid(spec, tmp_path / "grid")


def test_the_work_is_the_cost_hint_summed_or_the_grid_s_own_past_runs(tmp_path):
    plan = _plan(tmp_path, {"seconds": [2.0, 3.0], "seed": [0, 1]})
    assert describe_work(plan, batch=True) == Work(4, 4, 10.0, 4)  # no batch_key: 4 units
    done = plan.todo[0]  # a resumed grid: its finished runs' mean time, per run to do
    Path(done.run_dir).mkdir(parents=True)
    status = RunStatus(state="done", config_hash=done.config_hash, duration_s=0.5)
    write_status(Path(done.run_dir), status)
    save_json({}, Path(done.run_dir) / FINAL_FILE)
    plan = _plan(tmp_path, {"seconds": [2.0, 3.0], "seed": [0, 1]})
    assert len(plan.todo) == 3
    assert describe_work(plan, batch=True) == Work(3, 3, 1.5, 3)


def test_a_batched_unit_costs_its_costliest_run(tmp_path):
    """Runs of one batch train as one computation: the hint counts the unit once, at the
    cost of its costliest member, not the sum of its runs."""
    spec = parse_grid_spec({"study": "toy-cost-batched",
                            "grid": {"seconds": [1.0, 4.0, 2.0], "group": ["a", "b"]}})
    plan = plan_grid(spec, tmp_path / "grid")
    assert describe_work(plan, batch=True) == Work(6, 2, 8.0, 2)  # max 4 + max 4
    assert describe_work(plan, batch=True, slots=2) == Work(6, 2, 8.0, 4)  # 2 per group
    assert describe_work(plan, batch=False) == Work(6, 6, 14.0, 6)  # 2 x (1 + 4 + 2)


def test_units_count_the_batched_computations(tmp_path):
    spec = parse_grid_spec({"study": "toy-batch", "grid": {"x": [1.0, 2.0], "group": ["a", "b"]}})
    plan = plan_grid(spec, tmp_path / "grid")
    assert describe_work(plan, batch=True) == Work(4, 2, None, 2)  # one unit per group
    assert describe_work(plan, batch=True, slots=4) == Work(4, 2, None, 4)  # cut per worker
    assert describe_work(plan, batch=False) == Work(4, 4, None, 4)


def _grid(tmp_path: Path, grid: dict, *args: str, capsys, tag: str = "g") -> tuple[Path, str]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"study": "toy-batch", "fixed": {"steps": 2}, "grid": grid}))
    from sweeplab.cli.main import main

    out = tmp_path / "out"
    assert main(["grid", str(spec), "--tag", tag, "--out_dir", str(out), *args]) == 0
    (grid_dir,) = out.glob(f"*_{tag}")
    return grid_dir, capsys.readouterr().out.splitlines()[0]


def test_the_first_line_says_which_executor_and_why(tmp_path, capsys):
    grid_dir, line = _grid(tmp_path, {"x": [1.0, 2.0, 3.0]}, "--jobs", "1", capsys=capsys)
    assert line.endswith("0 already done, 3 to run (inline: one job slot)")
    assert json.loads((grid_dir / "grid.json").read_text())["executor"] == "inline"
    # one batched group of work of unknown size: cut into a batch per worker
    grid_dir, line = _grid(tmp_path, {"x": [1.0, 2.0, 3.0]}, "--jobs", "2", capsys=capsys,
                           tag="split")
    assert line.endswith("0 already done, 3 to run (local, 2 workers: 3 runs)")
    assert json.loads((grid_dir / "grid.json").read_text())["executor"] == "local"
    _, line = _grid(tmp_path, {"x": [1.0, 2.0, 3.0]}, "--jobs", "2", "--executor", "local",
                    capsys=capsys, tag="named")
    assert line.endswith("3 to run (local executor)")  # named: one unit or not, workers


def test_a_grid_of_unknown_work_starts_workers_and_its_resume_runs_inline(tmp_path, capsys):
    args = ("--jobs", "2", "--batch", "off")
    grid_dir, line = _grid(tmp_path, {"x": [1.0, 2.0, 3.0]}, *args, capsys=capsys)
    assert line.endswith("3 to run (local, 2 workers: 3 runs)")
    pids = {json.loads((p / "status.json").read_text())["pid"]
            for p in grid_dir.iterdir() if (p / "status.json").is_file()}
    assert len(pids) >= 1 and all(pid != os.getpid() for pid in pids)  # ran in workers
    # resumed: the grid's own runs say the work is tiny, so it runs in the driver
    again, line = _grid(tmp_path, {"x": [1.0, 2.0, 3.0, 4.0, 5.0]}, *args, capsys=capsys)
    assert again == grid_dir
    assert "3 already done, 2 to run (inline: ~0s of work)" in line
    status = json.loads((grid_dir / "x=5" / "status.json").read_text())
    assert status["state"] == "done" and status["pid"] == os.getpid()


def test_the_quick_debug_grid_runs_in_the_driver_by_the_study_s_cost_hint(tmp_path):
    from sweeplab.core.grid import load_grid_spec

    repo = Path(__file__).resolve().parents[2]
    plan = plan_grid(load_grid_spec(repo / "runs" / "configs" / "quick_debug.yaml"),
                     tmp_path / "grid")
    work = describe_work(plan, batch=True)
    assert (work.runs, work.units) == (4, 4)  # two potentials x two depths: 4 batch keys
    assert work.expected_s is not None and 0 < work.expected_s < 2 * STARTUP_S
    assert choose_executor(work, slots=2).kind == "inline"
