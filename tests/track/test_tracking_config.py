"""prepare_tracking: defaults resolved once in the parent, bad values caught, failures off."""

from __future__ import annotations

import pickle
import socket
import sqlite3

import pytest
from mlflow import MlflowClient

from sweeplab.errors import ConfigError
from sweeplab.track.config import TrackingConfig, prepare_tracking

pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy:DeprecationWarning")  # inside MLflow's store


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_enabled_follows_the_fields():
    assert not TrackingConfig().enabled
    assert TrackingConfig(wandb_project="p").wandb_enabled
    assert not TrackingConfig(wandb_project="p", wandb_mode="disabled").enabled
    assert TrackingConfig(mlflow_uri="default").mlflow_enabled
    assert not TrackingConfig(mlflow_uri="default").wandb_enabled


def test_default_mlflow_uri_is_a_sqlite_file_in_the_runs_dir_with_the_experiment(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    warnings: list[str] = []
    tracking = prepare_tracking(TrackingConfig(mlflow_uri="default"), "runs", "synthetic",
                                warnings.append)
    db = (tmp_path / "runs" / "mlflow.db").resolve()
    assert warnings == []
    assert tracking.mlflow_uri == f"sqlite:///{db}"
    assert tracking.mlflow_uri.startswith("sqlite:////")  # absolute: workers may run elsewhere
    assert tracking.mlflow_experiment == "synthetic"
    experiment = MlflowClient(tracking.mlflow_uri).get_experiment_by_name("synthetic")
    assert experiment is not None
    assert experiment.artifact_location == (db.parent / "mlartifacts").as_uri()
    tables = {r[0] for r in sqlite3.connect(db).execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"experiments", "runs", "metrics", "params"} <= tables
    assert pickle.loads(pickle.dumps(tracking)) == tracking
    # preparing again (a second grid on the same runs dir) finds the same experiment
    again = prepare_tracking(TrackingConfig(mlflow_uri="default"), tmp_path / "runs",
                             "synthetic", warnings.append)
    assert again == tracking and warnings == []


def test_explicit_experiment_name_wins(runs_dir):
    tracking = prepare_tracking(TrackingConfig(mlflow_uri="default", mlflow_experiment="mine"),
                                runs_dir, "grid-name", pytest.fail)
    assert tracking.mlflow_experiment == "mine"
    assert MlflowClient(tracking.mlflow_uri).get_experiment_by_name("mine") is not None


def test_bad_wandb_mode_is_a_config_error_naming_key_and_allowed_values(tmp_path):
    with pytest.raises(ConfigError) as err:
        prepare_tracking(TrackingConfig(wandb_project="p", wandb_mode="offlne"), tmp_path,
                         "e", pytest.fail)
    message = str(err.value)
    assert "\n" not in message
    assert "wandb_mode=offlne" in message
    for allowed in ("online", "offline", "disabled"):
        assert allowed in message
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_bad_WANDB_MODE_environment_variable_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(ConfigError, match="WANDB_MODE=sometimes.*online, offline, disabled"):
        prepare_tracking(TrackingConfig(wandb_project="p"), tmp_path, "e", pytest.fail)


def test_wandb_entity_without_project_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="wandb_project"):
        prepare_tracking(TrackingConfig(wandb_entity="team"), tmp_path, "e", pytest.fail)


def test_wandb_defaults_dir_under_runs_and_honours_WANDB_MODE(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_DIR")
    monkeypatch.setenv("WANDB_MODE", "dryrun")  # wandb's legacy name for offline
    tracking = prepare_tracking(TrackingConfig(wandb_project="p"), tmp_path / "runs", "e",
                                pytest.fail)
    assert tracking.wandb_dir == str((tmp_path / "runs" / "wandb").resolve())
    assert (tmp_path / "runs" / "wandb").is_dir()
    assert tracking.wandb_mode == "offline"
    assert tracking.wandb_enabled


def test_unreachable_wandb_server_means_offline_with_one_warning_saying_how_to_sync(
        tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    warnings: list[str] = []
    tracking = prepare_tracking(TrackingConfig(wandb_project="p"), tmp_path, "e",
                                warnings.append)
    assert tracking.wandb_mode == "offline"
    assert len(warnings) == 1
    assert "cannot be reached" in warnings[0]
    assert f"wandb sync {tracking.wandb_dir}/wandb" in warnings[0]


def test_reachable_wandb_server_with_a_key_means_online(tmp_path, monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.delenv("WANDB_MODE")
        monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
        tracking = prepare_tracking(TrackingConfig(wandb_project="p"), tmp_path, "e",
                                    pytest.fail)
        assert tracking.wandb_mode == "online"
        monkeypatch.delenv("WANDB_API_KEY")
        monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
        warnings: list[str] = []
        tracking = prepare_tracking(TrackingConfig(wandb_project="p"), tmp_path, "e",
                                    warnings.append)
    assert tracking.wandb_mode == "offline"
    assert len(warnings) == 1 and "wandb login" in warnings[0]


def test_unwritable_wandb_dir_turns_wandb_off_with_one_warning(tmp_path, runs_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    warnings: list[str] = []
    tracking = prepare_tracking(
        TrackingConfig(wandb_project="p", wandb_mode="offline", wandb_dir=str(blocker / "x"),
                       mlflow_uri="default"), runs_dir, "e", warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("wandb tracking off: cannot write")
    assert not tracking.wandb_enabled
    assert tracking.mlflow_enabled  # the other tracker is unaffected


def test_mlflow_server_down_turns_mlflow_off_with_one_warning(tmp_path):
    port = _closed_port()
    warnings: list[str] = []
    tracking = prepare_tracking(TrackingConfig(mlflow_uri=f"http://127.0.0.1:{port}"),
                                tmp_path, "e", warnings.append)
    assert tracking.mlflow_uri is None and not tracking.enabled
    assert warnings == [f"mlflow tracking off: 127.0.0.1:{port} cannot be reached; "
                        "the runs go on with their local files"]


def test_unwritable_mlflow_db_turns_mlflow_off_with_one_warning(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    warnings: list[str] = []
    tracking = prepare_tracking(TrackingConfig(mlflow_uri="default"), blocker / "runs", "e",
                                warnings.append)
    assert tracking.mlflow_uri is None
    assert len(warnings) == 1 and warnings[0].startswith("mlflow tracking off: sqlite:///")
