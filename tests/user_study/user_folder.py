"""A user's own folder, as a researcher would have it: a one-file study and a script.

Neither is installed nor on ``sys.path``: sweeplab finds them by path from the spec's
folder (or the current one), in the driver and in every worker. Both compute the same
thing, noisy gradient descent on ``x^2``, so a test can recompute what a run must log.
Both can wait while a ``hold-<seed>`` file exists beside them, so a test decides when a
run may end without timing anything, and both count their invocations in ``calls/``.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

from process_groups import run_group

STUDY = '''\
"""Noisy gradient descent on x^2: a one-file study."""
import os
import time
from pathlib import Path

from pydantic import Field

from sweeplab import RunContext, StudyConfig

HERE = Path(__file__).resolve().parent


class Config(StudyConfig):
    lr: float = Field(0.1, gt=0, description="learning rate")
    steps: int = Field(6, ge=1)
    noise: float = Field(0.1, ge=0)
    seed: int = 0


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """GD on x^2 with Gaussian gradient noise."""
    import random

    (HERE / "calls").mkdir(exist_ok=True)
    with open(HERE / "calls" / f"{ctx.run_dir.name}.txt", "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    rng, x = random.Random(cfg.seed), 1.0
    for step in range(cfg.steps):
        x -= cfg.lr * (2 * x + cfg.noise * rng.gauss(0, 1))
        ctx.log(step, loss=x * x)
    hold = HERE / f"hold-{cfg.seed}"
    deadline = time.monotonic() + 120
    while hold.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"loss": x * x}
'''

SCRIPT = '''\
"""Noisy gradient descent on x^2: an argparse script that knows nothing of sweeplab."""
import argparse
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--steps", type=int, default=6)
p.add_argument("--noise", type=float, default=0.1)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--mode", default="ok", choices=["ok", "crash", "garbage", "silent", "helper"])
args = p.parse_args()

run_name = Path(os.environ.get("SWEEPLAB_RUN_DIR", "alone")).name
(HERE / "calls").mkdir(exist_ok=True)
with open(HERE / "calls" / f"{run_name}.txt", "a") as fh:
    fh.write(f"{os.getpid()}\\n")

import random

rng, x = random.Random(args.seed), 1.0
for step in range(args.steps):
    x -= args.lr * (2 * x + args.noise * rng.gauss(0, 1))
    if args.mode == "helper":
        import sweeplab

        sweeplab.log(step, loss=x * x)
    elif args.mode != "silent":
        print(f"step {step}: x={x:.4f}")
        print("SWEEPLAB_METRICS " + json.dumps({"step": step, "loss": x * x}), flush=True)
if args.mode == "crash":
    raise FloatingPointError("loss diverged")
if args.mode == "garbage":
    print("SWEEPLAB_METRICS {this is not json")
    print("SWEEPLAB_METRICS " + json.dumps({"step": 99, "loss": "high"}))
    print("SWEEPLAB_FINAL " + json.dumps({"best": 0.5}))
if args.mode == "silent":
    print("all went well, I think")
if args.mode == "helper":
    import sweeplab

    sweeplab.final(best=0.25)
hold = HERE / f"hold-{args.seed}"
deadline = time.monotonic() + 120
while hold.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
'''


def losses(lr: float, steps: int = 6, noise: float = 0.1, seed: int = 0) -> list[float]:
    """What both programs log: the loss x^2 after each step."""
    rng, x, out = random.Random(seed), 1.0, []
    for _ in range(steps):
        x -= lr * (2 * x + noise * rng.gauss(0, 1))
        out.append(x * x)
    return out


def make_user_dir(tmp_path: Path) -> Path:
    """``tmp_path/project`` with ``mystudy.py`` and ``train.py``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "mystudy.py").write_text(STUDY)
    (folder / "train.py").write_text(SCRIPT)
    return folder


def sweeplab(cwd: Path, *args: str, timeout: float = 240):
    """``python -m sweeplab ARGS`` run in ``cwd`` as a user would, with no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return run_group([sys.executable, "-m", "sweeplab", *args], cwd=cwd, env=env,
                     timeout=timeout)


def calls(folder: Path, run: str) -> int:
    """How many times the run named ``run`` started its program or function."""
    path = folder / "calls" / f"{run}.txt"
    return len(path.read_text().split()) if path.exists() else 0
