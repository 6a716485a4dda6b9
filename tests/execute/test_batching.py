"""Batched execution: units of compatible runs, same files as alone, failures isolated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import toy_studies  # noqa: F401 - registers the toy studies
import yaml

from sweeplab.cli.main import main
from sweeplab.execute.batch import batch_units
from sweeplab.execute.job import Job

sys.path.insert(0, str(Path(__file__).parent))


def _job(name: str, key: str | None, run_dir: str = "/nonexistent") -> Job:
    return Job("toy-batch", {}, f"{run_dir}/{name}", name, "h", batch_key=key)


def test_units_group_equal_keys_split_per_worker_and_keep_the_rest_alone():
    jobs = [_job(f"a{i}", "A") for i in range(5)] + [_job("solo", None)] + [_job("b0", "B")]
    units = batch_units(jobs, workers=2)
    assert [[j.name for j in u] for u in units] == [["a0", "a1", "a2"], ["a3", "a4"],
                                                     ["solo"], ["b0"]]
    assert [len(u) for u in batch_units(jobs[:5], workers=2, max_batch=2)] == [2, 2, 1]


def _grid(tmp_path: Path, tag: str, *extra: str) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "study": "toy-batch",
        "fixed": {"steps": 4},
        "grid": {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "group": ["a", "b"]},
        "exclude": [{"x": 5.0, "group": "b"}],
    }))
    out = tmp_path / "out"
    main(["grid", str(spec), "--tag", tag, "--jobs", "2", "--out_dir", str(out), *extra])
    return next(out.glob(f"*_{tag}"))


def test_a_batched_grid_writes_what_the_unbatched_grid_writes(tmp_path, capsys):
    batched = _grid(tmp_path, "on")
    alone = _grid(tmp_path, "off", "--batch", "off")
    runs = sorted(p.name for p in alone.iterdir() if (p / "status.json").exists())
    assert len(runs) == 9
    sizes = {}
    for name in runs:
        for file in ("metrics.jsonl", "metrics.csv"):
            assert (batched / name / file).read_bytes() == (alone / name / file).read_bytes()
        final = json.loads((batched / name / "final.json").read_text())
        sizes[name] = final.pop("batch_size")
        solo = json.loads((alone / name / "final.json").read_text())
        assert solo.pop("batch_size") == 1 and final == solo
        assert "trained in a batch" in (batched / name / "logs" / "run.log").read_text()
    assert sorted(sizes.values()) == [2, 2, 2, 2, 2, 2, 3, 3, 3]  # a: 3+2, b: 2+2


def test_one_failing_run_fails_alone_in_its_batch(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"study": "toy-batch",
                                    "zip": {"x": [1.0, 2.0, 3.0], "fail": [False, True, False]}}))
    out = tmp_path / "out"
    code = main(["grid", str(spec), "--tag", "f", "--jobs", "1", "--out_dir", str(out)])
    assert code == 1
    grid = next(out.glob("*_f"))
    states = {p.name: json.loads((p / "status.json").read_text())
              for p in grid.iterdir() if (p / "status.json").exists()}
    failed = {n for n, s in states.items() if s["state"] == "failed"}
    assert len(failed) == 1 and "x=2.0 fails" in states[failed.pop()]["error"]
    done = [n for n, s in states.items() if s["state"] == "done"]
    assert len(done) == 2
    for name in done:
        assert json.loads((grid / name / "final.json").read_text())["batch_size"] == 3
