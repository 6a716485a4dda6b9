"""``sweeplab.run_grid`` from Python, as a notebook or a test calls it: the result object,
resume, failures as data, the driver lock, bad input refused before anything is written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

import sweeplab
from sweeplab import make_executor, run_grid
from sweeplab.errors import ConfigError
from sweeplab.execute.grid_lock import GridLock, GridLockedError

STUDY = '''
import sweeplab


class Toy(sweeplab.StudyConfig):
    x: float = 0.0
    fail: bool = False


def run(cfg: Toy, ctx):
    if cfg.fail:
        raise RuntimeError(f"x={cfg.x} fails on purpose")
    for step in range(3):
        ctx.log(step, y=cfg.x * step)
    return {"y": 2 * cfg.x}
'''


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    (tmp_path / "toy.py").write_text(textwrap.dedent(STUDY))
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({"study": "./toy.py:run",
                                    "grid": {"x": [1.0, 2.0], "fail": [False, True]}},
                                   sort_keys=False))
    return path


def test_a_grid_from_python_returns_its_folder_counts_and_states(spec, tmp_path):
    seen: list[tuple[str, str]] = []
    result = run_grid(spec, out_dir=tmp_path / "runs", executor=make_executor("local", jobs=2),
                      on_start=lambda job: seen.append(("start", job.name)),
                      on_done=lambda job, res: seen.append((res.state, job.name)))
    assert result.grid_dir.parent == tmp_path / "runs" and result.grid_dir.name.endswith("_toy")
    assert result.counts == {"done": 2, "failed": 2} and result.failed == 2
    assert result.states == {"x=1,fail=false": "done", "x=1,fail=true": "failed",
                             "x=2,fail=false": "done", "x=2,fail=true": "failed"}
    assert result.results["x=2,fail=false"].final == {"y": 4.0}
    assert "fails on purpose" in result.results["x=1,fail=true"].error
    assert sorted(seen) == sorted([("start", n) for n in result.states]
                                  + [(s, n) for n, s in result.states.items()])
    assert (result.grid_dir / "master.csv").is_file()
    assert (result.grid_dir / "x=2,fail=false" / "final.json").is_file()
    assert isinstance(result, sweeplab.GridResult)


def test_calling_it_again_resumes_only_what_is_not_done(spec, tmp_path):
    first = run_grid(spec, out_dir=tmp_path / "runs", executor=make_executor("inline"))
    done_file = first.grid_dir / "x=1,fail=false" / "final.json"
    stamp = done_file.stat().st_mtime_ns
    again = run_grid(spec, out_dir=tmp_path / "runs", executor=make_executor("inline"))
    assert again.grid_dir == first.grid_dir
    assert sorted(again.results) == ["x=1,fail=true", "x=2,fail=true"]
    assert done_file.stat().st_mtime_ns == stamp
    resumed = run_grid(resume=first.grid_dir, executor=make_executor("inline"))
    assert resumed.counts == {"done": 2, "failed": 2}


def test_a_bad_value_is_refused_before_any_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy.py").write_text(textwrap.dedent(STUDY))
    spec = {"study": "./toy.py:run", "grid": {"x": [1.0, "lots"]}}
    with pytest.raises(ConfigError, match=r"run x=lots: invalid x=lots"):
        run_grid({**spec}, out_dir=tmp_path / "runs", executor=make_executor("inline"))
    assert not any((tmp_path / "runs").iterdir())
    with pytest.raises(ConfigError, match="invalid executor=cluster: allowed values are "
                                          "inline, local, slurm"):
        make_executor("cluster")


def test_a_folder_another_driver_holds_is_refused(spec, tmp_path):
    first = run_grid(spec, out_dir=tmp_path / "runs", executor=make_executor("inline"))
    with GridLock(first.grid_dir, ["another", "driver"]):
        with pytest.raises(GridLockedError, match="is being run by pid"):
            run_grid(resume=first.grid_dir, executor=make_executor("inline"))
