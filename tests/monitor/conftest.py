"""Real run directories for the monitoring commands: two tiny grids and a single run.

Built once per session by the real CLI (inline executor, 20 epochs, no figures), then
copied for each test so a test can corrupt its copy freely.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from sweeplab.cli.main import main


def _grid(tmp: Path, root: Path, tag: str, spec: dict) -> None:
    path = tmp / f"{tag}.yaml"
    path.write_text(yaml.safe_dump(spec))
    main(["grid", str(path), "--tag", tag, "--out_dir", str(root), "--executor", "inline"])


@pytest.fixture(scope="session")
def built_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs_out/``: grid ``ok`` (potential x L, 4 done runs), grid ``bad`` (lr=0.1 done,
    lr=100 failed: the loss blows up) and one single run."""
    tmp = tmp_path_factory.mktemp("monitor")
    root = tmp / "runs_out"
    fixed = {"epochs": 20, "plots": False, "n_samples": 64}
    _grid(tmp, root, "ok", {"study": "implicit-bias", "fixed": fixed,
                            "grid": {"potential": ["quadratic", "lp"], "L": [1, 2]}})
    _grid(tmp, root, "bad", {"study": "implicit-bias",
                             "fixed": {**fixed, "separation": 0.2, "noise": 1.5,
                                       "loss": "exponential"},
                             "grid": {"lr": [0.1, 100.0]}})
    main(["run", "implicit-bias", "--epochs", "20", "--plots", "false", "--n_samples", "64",
          "--out_dir", str(root), "--tag", "single", "--quiet"])
    return root


@pytest.fixture
def runs_root(built_root: Path, tmp_path: Path, capsys) -> Path:
    """A private copy of :func:`built_root` (the build's output swallowed)."""
    root = tmp_path / "runs_out"
    shutil.copytree(built_root, root, symlinks=True)
    capsys.readouterr()
    return root
