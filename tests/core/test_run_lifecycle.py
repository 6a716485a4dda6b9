"""execute_run records every outcome: done, failed (with traceback), interrupted."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import Field

from sweeplab import RunContext, StudyConfig, get_study, make_experiment_dir, register_study
from sweeplab.errors import ConfigError, UnknownStudyError
from sweeplab.execute.single import execute_run


class ToyConfig(StudyConfig):
    """A study config for lifecycle tests."""

    steps: int = Field(3, ge=1)
    fail_at: int | None = None
    seed: int = 0
    interrupt: bool = False
    spin_s: float = 0.0


@register_study("toy-lifecycle", config=ToyConfig)
def toy(cfg: ToyConfig, ctx: RunContext) -> dict[str, float]:
    """Counts up (spinning the CPU ``spin_s`` seconds first); fails or is interrupted on
    request."""
    end = time.process_time() + cfg.spin_s
    while time.process_time() < end:
        pass
    for step in range(cfg.steps):
        if cfg.fail_at == step:
            raise RuntimeError(f"boom at {step}")
        if cfg.interrupt and step == 1:
            raise KeyboardInterrupt
        ctx.log(step, value=float(step))
    ctx.warn("a warning worth keeping")
    return {"last": float(cfg.steps - 1)}


def _go(tmp_path, **kw):
    study = get_study("toy-lifecycle")
    return execute_run(study, ToyConfig(**kw), make_experiment_dir(tmp_path))


def test_done_run_has_final_metrics_and_warnings(tmp_path):
    r = _go(tmp_path)
    assert r.state == "done"
    final = json.loads((r.run_dir / "final.json").read_text())
    assert final == {"last": 2.0, "warnings": ["a warning worth keeping"]}
    assert json.loads((r.run_dir / "status.json").read_text())["state"] == "done"


def test_status_records_the_cpu_time_of_every_attempt(tmp_path):
    r = _go(tmp_path, spin_s=0.3)
    status = json.loads((r.run_dir / "status.json").read_text())
    assert status["cpu_s"] >= 0.3 and status["duration_s"] > 0
    from sweeplab.core.rundir import RunStatus
    again = RunStatus()
    again.started_by_this_process("abc", RunStatus.from_dict(status))
    again.ended_now("done", 1.0, 0.5)
    assert again.cpu_s == pytest.approx(status["cpu_s"] + 0.5) and again.attempt == 2


def test_failure_is_data_with_traceback_in_the_log(tmp_path):
    r = _go(tmp_path, fail_at=2)
    assert r.state == "failed" and "boom at 2" in r.error
    status = json.loads((r.run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == "RuntimeError: boom at 2"
    log = (r.run_dir / "logs" / "run.log").read_text()
    assert "Traceback" in log and "boom at 2" in log
    assert len((r.run_dir / "metrics.jsonl").read_text().splitlines()) == 2  # steps kept
    assert not (r.run_dir / "final.json").exists()


def test_interrupt_is_recorded_then_propagates(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        _go(tmp_path, interrupt=True)
    (run_dir,) = tmp_path.iterdir()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and status["interrupted"] is True


def test_registry_errors_and_config_identity():
    with pytest.raises(UnknownStudyError, match="implicit-bias"):
        get_study("nope")
    a, b = ToyConfig(steps=3), ToyConfig.from_mapping({"steps": 3})
    assert a.config_hash() == b.config_hash() != ToyConfig(steps=4).config_hash()
    with pytest.raises(ConfigError, match="invalid steps=0: must be >= 1"):
        ToyConfig.from_mapping({"steps": 0})
    with pytest.raises(ConfigError,
                       match=r"unknown key \(did you mean steps\?\); allowed keys: steps"):
        ToyConfig.from_mapping({"stpes": 3}, where="run 4")


def test_errors_survive_pickling_between_processes():
    import pickle

    from sweeplab.errors import DataNotFoundError, NonFiniteError

    for exc in (UnknownStudyError("x", ["a", "b"]), DataNotFoundError("mnist", ["/d"], "pass it"),
                NonFiniteError("loss", 3), ConfigError("p", 0.5, "must be > 1", where="run 1")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
