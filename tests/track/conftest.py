"""Keep trackers local and quiet in tests: wandb offline in tmp, no MLflow telemetry.

wandb and mlflow are optional dependencies (``pip install -e .[track]``); without them
the tests that need them are not collected.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

_HAVE_WANDB = importlib.util.find_spec("wandb") is not None
_HAVE_MLFLOW = importlib.util.find_spec("mlflow") is not None
collect_ignore = [
    *([] if _HAVE_WANDB else ["test_wandb_sink.py", "wandb_records.py"]),
    *([] if _HAVE_MLFLOW else ["test_mlflow_sink.py", "test_tracking_config.py"]),
    *([] if _HAVE_WANDB and _HAVE_MLFLOW else ["test_tracker_failures.py"]),
]


@pytest.fixture(autouse=True)
def _tracker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wandb offline with every folder it uses under ``tmp_path``; MLflow sends nothing."""
    home = tmp_path / "wandb-home"
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(home / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def _mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite DB with its schema created once (the migrations take seconds)."""
    from sweeplab.track.mlflow_sink import ensure_experiment

    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    ensure_experiment(f"sqlite:///{db}", "template")
    return db


@pytest.fixture
def runs_dir(tmp_path: Path, _mlflow_template_db: Path) -> Path:
    """A runs folder whose ``mlflow.db`` already has MLflow's schema (copied from a template)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copyfile(_mlflow_template_db, runs / "mlflow.db")
    return runs
