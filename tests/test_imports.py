"""Each path imports only what it uses (issue 17): checked in ``sys.modules`` of a child.

A run without figures imports no matplotlib; no run imports ``torch._dynamo`` (torch's
compiler, which ``torch.optim`` pulls in on first use although nothing is compiled);
``sweeplab --help`` imports neither torch nor NumPy; the implicit-bias baselines import
cvxpy, scipy and scikit-learn only when they compute. (A bad value refused before the
heavy imports: ``tests/execute/test_light_driver.py``.) Timing lives in
``benchmarks/bench_startup.py``, never here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WATCHED = ("torch", "torch._dynamo", "sympy", "numpy", "matplotlib", "cvxpy", "scipy",
           "sklearn", "pandas")
"""The modules whose presence the tests report."""

CLI = """
import json, sys
from sweeplab.cli.main import main
code = main({argv!r})
print(json.dumps({{"code": code, "loaded": [m for m in {watched!r} if m in sys.modules]}}))
"""


def _loaded(code: str, cwd: Path) -> dict:
    """Run ``code`` in a fresh interpreter, with its own empty result cache
    (``cwd/cache``, kept across calls of one test); the JSON of its last output line."""
    env = {**os.environ, "SWEEPLAB_CACHE": str(cwd / "cache")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cli(argv: list[str], cwd: Path) -> dict:
    """``sweeplab ARGV`` in a fresh interpreter: its exit code and the watched modules."""
    return _loaded(CLI.format(argv=argv, watched=WATCHED), cwd)


def _run_argv(tmp_path: Path, *flags: str) -> list[str]:
    return ["run", "implicit-bias", "--epochs", "3", "--out_dir", str(tmp_path / "runs"),
            "--quiet", *flags]


def test_a_run_without_figures_imports_no_matplotlib_and_no_dynamo(tmp_path):
    out = _cli(_run_argv(tmp_path, "--no-plots"), tmp_path)
    assert out["code"] == 0
    assert "torch" in out["loaded"] and "cvxpy" in out["loaded"]  # it did train, baselines
    assert "matplotlib" not in out["loaded"]
    assert "torch._dynamo" not in out["loaded"] and "sympy" not in out["loaded"]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "final.json").is_file() and not list((run_dir / "figs").iterdir())


def test_a_run_on_data_seen_before_imports_no_solver(tmp_path):
    """The baselines of data solved before come from the cache: no scikit-learn, scipy or
    cvxpy (their imports cost more than the run's training), and the same directions."""
    first = _cli(_run_argv(tmp_path, "--no-plots", "--lr", "0.2"), tmp_path)
    second = _cli(_run_argv(tmp_path, "--no-plots", "--lr", "0.05", "--L", "3"), tmp_path)
    assert first["code"] == second["code"] == 0
    assert "sklearn" in first["loaded"] and "cvxpy" in first["loaded"]
    assert not {"sklearn", "scipy", "cvxpy", "pandas"} & set(second["loaded"])
    a, b = sorted((tmp_path / "runs").iterdir())
    da = json.loads((a / "directions.json").read_text())
    db = json.loads((b / "directions.json").read_text())
    for name in ("svm", "logreg", "lp_max_margin"):
        assert da[name] == db[name], name


def test_a_run_with_figures_imports_matplotlib_and_still_no_dynamo(tmp_path):
    out = _cli(_run_argv(tmp_path), tmp_path)
    assert out["code"] == 0
    assert "matplotlib" in out["loaded"]
    assert "torch._dynamo" not in out["loaded"]


def test_help_imports_no_torch_and_no_numpy(tmp_path):
    out = _cli(["--help"], tmp_path)
    assert out == {"code": 0, "loaded": []}


def test_mirror_descent_never_imports_the_compiler(tmp_path):
    code = f"""
import json, sys, torch
from sweeplab.studies.implicit_bias.optim import MirrorDescent
from sweeplab.studies.implicit_bias.potentials import LpPotential
w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
opt = MirrorDescent([w], lr=0.1, potential=LpPotential(1.5))
(w ** 2).sum().backward()
opt.step()
opt.load_state_dict(opt.state_dict())
opt.zero_grad()
print(json.dumps({{"w": w.tolist(), "loaded": [m for m in {WATCHED!r} if m in sys.modules]}}))
"""
    out = _loaded(code, tmp_path)
    assert out["w"] != [1.0, 1.0, 1.0]  # it stepped
    assert "torch._dynamo" not in out["loaded"] and "sympy" not in out["loaded"]


def test_the_baselines_module_imports_no_solver_until_it_computes(tmp_path):
    code = f"""
import json, sys
import sweeplab.studies.implicit_bias.baselines as b
before = [m for m in {WATCHED!r} if m in sys.modules]
b.logreg_direction([[1.0, 0.0], [-1.0, 0.5]], [1.0, -1.0])
print(json.dumps({{"before": before, "loaded": [m for m in {WATCHED!r} if m in sys.modules]}}))
"""
    out = _loaded(code, tmp_path)
    assert out["before"] == ["numpy"]
    assert "sklearn" in out["loaded"] and "cvxpy" not in out["loaded"]


def test_data_without_pca_imports_no_scikit_learn(tmp_path):
    code = f"""
import json, sys
from sweeplab.data import load_dataset
from sweeplab.data.config import DataConfig
data = load_dataset(DataConfig(standardize=True), seed=0)
print(json.dumps({{"n": len(data.y), "loaded": [m for m in {WATCHED!r} if m in sys.modules]}}))
"""
    out = _loaded(code, tmp_path)
    assert out["n"] > 0
    assert "sklearn" not in out["loaded"] and "scipy" not in out["loaded"]


def test_the_analysis_aggregates_without_scipy_stats(tmp_path):
    """The t-interval's quantile comes from scipy.special: the analysis (its pipeline, the
    implicit-bias analysis and figures) imports no scipy.stats (~0.4 s)."""
    code = """
import json, sys
import pandas as pd
import sweeplab.analysis.pipeline, sweeplab.studies.implicit_bias.analysis
from sweeplab.analysis.aggregate import aggregate_final
runs = pd.DataFrame({"run_id": ["a", "b", "c"], "lr": [0.1, 0.1, 0.1],
                     "final.acc": [0.5, 0.7, 0.9]})
row = aggregate_final(runs, ["lr"]).iloc[0]
print(json.dumps({"ci": [row["acc_ci_low"], row["acc_ci_high"]],
                  "stats": "scipy.stats" in sys.modules}))
"""
    out = _loaded(code, tmp_path)
    assert out["ci"][0] < 0.7 < out["ci"][1]
    assert out["stats"] is False
