"""Benchmark: the 18-run synthetic grid (1000 epochs each) three ways, in one invocation.

    .venv/bin/python benchmarks/bench_grid.py [--epochs 1000] [--skip-shell] [--skip-hydra]

1. sweeplab: ``sweeplab grid runs/configs/synthetic_potentials.yaml`` on the local
   executor (warm workers, one per core).
2. A shell loop starting one process per run (``python -m runs.scripts.train_synth``),
   what a researcher writes in bash today.
3. Hydra's multirun with its joblib launcher (``pip install -e .[bench]``), where it
   installs; each Hydra job runs the same study function.

Prints wall times and the ratios to sweeplab. Target: sweeplab at least 5x faster than
the shell loop. Every variant does the same work and writes the same run files; per-run
figures are off (a grid's default) unless ``--figures`` turns them on everywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "runs" / "configs" / "synthetic_potentials.yaml"
SETTINGS = [("quadratic", None), ("lp", 1.5), ("lp", 3.0)]


HYDRA_MISSING = ("pip install -e '.[bench]' installs hydra-core and "
                 "hydra-joblib-launcher")


def hydra_multirun_argv(spec: dict, sweep_dir: Path, jobs: int) -> list[str] | None:
    """Hydra's multirun of the grid ``spec`` (its joblib launcher, ``jobs`` at once).

    Each job runs the study function sweeplab runs (``benchmarks/hydra_app``), writing
    into ``sweep_dir``; ``spec`` is a flat implicit-bias grid (the settings of
    ``SETTINGS``, its ``depths``, ``seeds`` and ``epochs``; ``plots`` if set). None where
    Hydra or its joblib launcher is not installed.
    """
    try:
        import hydra_plugins.hydra_joblib_launcher  # noqa: F401
    except ImportError:
        return None
    app = REPO / "benchmarks" / "hydra_app" / "train.py"
    return [sys.executable, str(app), "--multirun", "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={jobs}", "setting=quadratic,lp1.5,lp3",
            f"L={','.join(map(str, spec['depths']))}",
            f"seed={','.join(map(str, spec['seeds']))}", f"epochs={spec['epochs']}",
            f"+plots={bool(spec.get('plots', False))}", f"hydra.sweep.dir={sweep_dir}"]


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--skip-shell", action="store_true")
    parser.add_argument("--skip-hydra", action="store_true")
    parser.add_argument("--figures", action="store_true",
                        help="every variant draws the per-run figures (png + pdf)")
    args = parser.parse_args()

    spec = yaml.safe_load(SPEC.read_text())
    spec["epochs"] = args.epochs
    spec["plots"] = args.figures
    work = Path(tempfile.mkdtemp(prefix="sweeplab-bench-grid-"))
    spec_path = work / "grid.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    shutil.copytree(REPO / "runs", work / "runs")
    py = sys.executable
    cores = len(os.sched_getaffinity(0))
    n_runs = len(SETTINGS) * len(spec["depths"]) * len(spec["seeds"])
    print(f"grid benchmark: {n_runs} implicit-bias runs x {args.epochs} epochs, {cores} cores, "
          f"per-run figures {'on' if args.figures else 'off'} in every variant")

    results: dict[str, float] = {}
    results["sweeplab grid (local, warm workers)"] = timed(
        [py, "-m", "sweeplab", "grid", str(spec_path), "--tag", "bench", "--out_dir",
         str(work / "sweeplab")], work)

    if not args.skip_shell:
        lines = []
        for potential, p in SETTINGS:
            for depth in spec["depths"]:
                for seed in spec["seeds"]:
                    flags = (f"--potential {potential} --L {depth} --seed {seed} "
                             f"--epochs {args.epochs} --lr {spec['lr']} --input_dim 2 "
                             f"--n_samples 512 --separation 3.0 --noise 0.2 "
                             f"--out_dir {work / 'shell'} --plots {args.figures}")
                    if p is not None:
                        flags += f" --p {p}"
                    lines.append(f"{py} -m runs.scripts.train_synth {flags}")
        script = work / "loop.sh"
        script.write_text("set -e\n" + "\n".join(lines) + "\n")
        results["shell loop, one process per run"] = timed(["bash", str(script)], work)

    if not args.skip_hydra:
        argv = hydra_multirun_argv(spec, work / "hydra", cores)
        if argv is None:
            print(f"hydra: skipped ({HYDRA_MISSING})")
        else:
            results["hydra multirun, joblib launcher"] = timed(argv, work)

    base = results["sweeplab grid (local, warm workers)"]
    print(f"\n{'variant':<40}{'wall s':>9}{'vs sweeplab':>13}")
    for name, seconds in results.items():
        print(f"{name:<40}{seconds:>9.2f}{seconds / base:>12.2f}x")
    shell = results.get("shell loop, one process per run")
    if shell is not None:
        print(f"\nsweeplab is {shell / base:.1f}x faster than the shell loop "
              f"(target >= 5x: {'met' if shell / base >= 5 else 'NOT met'})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
