"""``@sweeplab.main(Config)``: ``python gd.py --flags`` is a run, ``--grid`` a grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from user_folder import losses

SCRIPT = '''\
import random

import sweeplab
from pydantic import Field


class Config(sweeplab.StudyConfig):
    lr: float = Field(0.1, gt=0, description="step size of gradient descent")
    steps: int = 6
    noise: float = 0.1
    seed: int = 0


@sweeplab.main(Config)
def main(cfg: Config, ctx: sweeplab.RunContext):
    rng, x = random.Random(cfg.seed), 1.0
    for step in range(cfg.steps):
        x -= cfg.lr * (2 * x + cfg.noise * rng.gauss(0, 1))
        ctx.log(step, loss=x * x)
    return {"loss": x * x, "x": x}


if __name__ == "__main__":
    main()
'''


def _python(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "gd.py", *args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=240)


def test_a_decorated_script_runs_grids_resumes_and_refuses_bad_values(tmp_path):
    (tmp_path / "gd.py").write_text(SCRIPT)
    one = _python(tmp_path, "--lr", "0.3", "--seed", "2", "--quiet")
    assert one.returncode == 0, one.stderr
    run_dir = tmp_path / one.stdout.strip()
    assert run_dir.parent == tmp_path / "runs_out"
    final = json.loads((run_dir / "final.json").read_text())
    assert final["loss"] == pytest.approx(losses(0.3, seed=2)[-1], rel=1e-12)
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == list(range(6))
    assert "already done" in _python(tmp_path, "--resume", str(run_dir)).stdout

    bad = _python(tmp_path, "--lr", "0")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "sweeplab: error: invalid lr=0: must be > 0"
    typo = _python(tmp_path, "--learning-rate", "0.1")
    assert typo.returncode == 2 and "unknown flag '--learning-rate'" in typo.stderr
    assert "see 'python gd.py --help'" in typo.stderr
    assert "step size of gradient descent" in _python(tmp_path, "--help").stdout

    (tmp_path / "gd.yaml").write_text(yaml.safe_dump({"grid": {"lr": [0.1, 0.2],
                                                               "seed": [0, 1]}}))
    grid = _python(tmp_path, "--grid", "gd.yaml", "--jobs", "2", "--tag", "g")
    assert grid.returncode == 0, grid.stderr
    (grid_dir,) = (tmp_path / "runs_out").glob("*_g")
    for lr in (0.1, 0.2):
        for seed in (0, 1):
            final = json.loads((grid_dir / f"lr={lr},seed={seed}" / "final.json").read_text())
            assert final["loss"] == pytest.approx(losses(lr, seed=seed)[-1], rel=1e-12)
    again = _python(tmp_path, "--grid", "gd.yaml", "--tag", "g")
    assert "4 already done, 0 to run" in again.stdout
