"""SlurmExecutor against a real one-node Slurm cluster (scripts/slurm/start_cluster.sh).

The cluster is started once per session in a temp state dir and stopped at the end. Where it
cannot start (not root; no Slurm binaries and apt-get cannot install them; no submitit)
these tests skip and say why. The toy study lives in ``slurm_toy_study`` beside this file;
the tasks find it through a PYTHONPATH line in the batch script and import it before running
their job (``imports``), since submitit pickles ``run_job`` by reference and the study must
be registered in the task's own interpreter.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweeplab.core.rundir import RunResult
from sweeplab.execute.job import Job

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE.parents[1] / "scripts" / "slurm"
CANNOT_HOST = 3  # start_cluster.sh: this machine cannot host a cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A running one-node cluster; SLURM_CONF points at it for the session."""
    pytest.importorskip("submitit", reason="submitit missing: pip install 'sweeplab[slurm]'")
    if os.geteuid() != 0:
        pytest.skip("a test Slurm cluster needs root (slurmd, munged)")
    state = tmp_path_factory.mktemp("slurm")
    # Ports of our own, so a cluster left over by a killed session cannot clash with this one.
    env = dict(os.environ, SLURM_CTLD_PORT=str(_free_port()), SLURM_D_PORT=str(_free_port()))
    proc = subprocess.run(
        [str(SCRIPTS / "start_cluster.sh"), str(state)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    if proc.returncode == CANNOT_HOST:
        pytest.skip(f"no Slurm cluster here: {proc.stderr.strip().splitlines()[-1]}")
    if proc.returncode != 0:
        pytest.fail(f"start_cluster.sh failed ({proc.returncode}):\n{proc.stderr}")
    exports = [ln for ln in proc.stdout.splitlines() if ln.startswith("export SLURM_CONF=")]
    conf = exports[-1].split("=", 1)[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", conf)
        yield Path(conf)
    subprocess.run([str(SCRIPTS / "stop_cluster.sh"), str(state)], capture_output=True,
                   timeout=120)


def _executor(folder: Path, **kw):
    from sweeplab.execute.slurm import SlurmExecutor

    path = f"export PYTHONPATH={shlex.quote(str(HERE))}${{PYTHONPATH:+:$PYTHONPATH}}"
    kw.setdefault("time", 5)
    return SlurmExecutor(folder=folder, cpus_per_task=1, setup=[path],
                         imports=["slurm_toy_study"], poll_s=0.5, **kw)


def _jobs(grid: Path, *configs: dict) -> list[Job]:
    from slurm_toy_study import STUDY, SlurmToyConfig

    jobs = []
    for i, raw in enumerate(configs):
        cfg = SlurmToyConfig(**raw)
        name = f"run{i}"
        jobs.append(Job(STUDY, cfg.canonical(), str(grid / name), name, cfg.config_hash()))
    return jobs


class Recorder:
    """on_start/on_done callbacks that keep every call."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.done: list[tuple[str, RunResult]] = []

    def on_start(self, job: Job) -> None:
        self.started.append(job.name)

    def on_done(self, job: Job, result: RunResult) -> None:
        assert job.name in self.started, "on_done before on_start"
        self.done.append((job.name, result))


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_job_array_runs_every_job_and_a_failure_is_data(slurm_cluster, tmp_path):
    jobs = _jobs(tmp_path, {"x": 2.0}, {"x": 3.0, "mode": "raise"}, {"x": 4.0})
    rec = Recorder()
    _executor(tmp_path / ".submitit").run(jobs, rec.on_start, rec.on_done)

    assert sorted(name for name, _ in rec.done) == ["run0", "run1", "run2"]  # once each
    assert sorted(rec.started) == ["run0", "run1", "run2"]
    results = dict(rec.done)
    assert results["run1"].state == "failed"
    assert results["run1"].error == "RuntimeError: toy failure at x=3"
    status = _read(tmp_path / "run1" / "status.json")
    assert status["state"] == "failed" and "toy failure" in status["error"]

    array_ids = set()
    for name, x in (("run0", 2.0), ("run2", 4.0)):
        assert results[name].state == "done", results[name].error
        run_dir = tmp_path / name
        assert _read(run_dir / "status.json")["state"] == "done"
        final = _read(run_dir / "final.json")
        assert final["y"] == x**2 == results[name].final["y"]
        array_ids.add(final["slurm_array_job_id"])
        assert final["slurm_array_task_id"] == int(name[-1])
    # One array, really run by Slurm: its id is the one submitit got back from sbatch.
    (array_id,) = array_ids
    assert array_id > 0
    assert sorted(p.name for p in (tmp_path / ".submitit").glob("*_result.pkl")) == [
        f"{int(array_id)}_{i}_0_result.pkl" for i in range(3)
    ]


def test_task_killed_by_slurm_is_a_failed_result(slurm_cluster, tmp_path):
    jobs = _jobs(tmp_path, {"x": 1.0}, {"x": 5.0, "mode": "cancel"})
    rec = Recorder()
    _executor(tmp_path / ".submitit").run(jobs, rec.on_start, rec.on_done)

    results = dict(rec.done)
    assert len(rec.done) == 2
    assert results["run0"].state == "done", results["run0"].error
    cancelled = results["run1"]
    assert cancelled.state == "failed"
    assert "CANCELLED" in cancelled.error and "without a result" in cancelled.error
    assert not (tmp_path / "run1" / "final.json").exists()


def test_ctrl_c_cancels_outstanding_tasks(slurm_cluster, tmp_path):
    jobs = _jobs(tmp_path, *({"x": float(i), "mode": "sleep"} for i in range(3)))
    folder = tmp_path / ".submitit"

    def interrupt(job: Job) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _executor(folder).run(jobs, interrupt, lambda job, result: None)

    (array_id,) = {p.name.split("_")[0] for p in folder.glob("*_submitted.pkl")}
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run(
            ["squeue", "--noheader", "--array", "--states=all", "--format=%i %T",
             f"--jobs={array_id}"],
            capture_output=True, text=True, check=True,
        ).stdout
        states = dict(line.split() for line in out.splitlines())
        if set(states.values()) == {"CANCELLED"} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert states == {f"{array_id}_{i}": "CANCELLED" for i in range(3)}


def test_refused_submission_is_a_typed_error(slurm_cluster, tmp_path):
    from sweeplab.errors import SweeplabError
    from sweeplab.execute.slurm import SlurmSubmitError

    with pytest.raises(SlurmSubmitError, match="partition") as info:
        _executor(tmp_path / ".submitit", partition="no-such-partition").run(
            _jobs(tmp_path, {"x": 1.0}), Recorder().on_start, Recorder().on_done
        )
    assert isinstance(info.value, SweeplabError)


def test_logs_default_to_the_grid_dir(slurm_cluster, tmp_path):
    from sweeplab.execute.slurm import SlurmExecutor

    jobs = _jobs(tmp_path / "grid", {"x": 1.0}, {"x": 2.0})
    assert SlurmExecutor().log_folder(jobs) == tmp_path / "grid" / ".submitit"
    assert SlurmExecutor().log_folder(jobs[:1]) == tmp_path / "grid" / ".submitit"


def test_missing_submitit_is_a_typed_error(monkeypatch):
    from sweeplab.errors import SweeplabError
    from sweeplab.execute.slurm import SlurmExecutor, SlurmUnavailableError

    monkeypatch.setitem(sys.modules, "submitit", None)  # what `import submitit` sees uninstalled
    with pytest.raises(SlurmUnavailableError, match=r"pip install 'sweeplab\[slurm\]'") as info:
        SlurmExecutor()
    assert isinstance(info.value, SweeplabError)


def test_sweeplab_grid_on_slurm_writes_the_same_grid_and_resumes(slurm_cluster, tmp_path,
                                                                 capsys):
    """The CLI path: a built-in study's grid as one job array, master.csv, then a resume."""
    import csv

    import yaml

    from sweeplab.cli.main import main

    spec = {"study": "implicit-bias", "fixed": {"epochs": 20, "n_samples": 64},
            "grid": {"potential": ["quadratic", "lp"], "seed": [0, 1]}}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(spec))
    args = ["grid", str(path), "--tag", "s", "--executor", "slurm", "--out_dir",
            str(tmp_path / "out"), "--time", "5"]
    assert main(args) == 0, capsys.readouterr()
    (grid_dir,) = (tmp_path / "out").iterdir()
    with open(grid_dir / "master.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(r["state"] == "done" for r in rows)
    assert (grid_dir / ".submitit").is_dir()
    provenance = _read(grid_dir / rows[0]["run"] / "provenance.json")
    assert provenance["pid"] != os.getpid()  # ran in a Slurm task, not here
    capsys.readouterr()
    assert main(args) == 0
    assert "4 already done, 0 to run" in capsys.readouterr().out


def test_a_user_study_and_an_unchanged_script_run_as_slurm_arrays(slurm_cluster, tmp_path,
                                                                   capsys):
    """A user's folder, installed nowhere and on no path: a one-file study and an argparse
    script, each grid one job array; every task finds the code from the spec's folder."""
    import yaml

    from sweeplab.cli.main import main

    project = tmp_path / "project"
    project.mkdir()
    task = "float(os.environ.get('SLURM_ARRAY_TASK_ID', -1))"
    (project / "own.py").write_text(
        "import os\n\nfrom sweeplab import StudyConfig\n\n\n"
        "class Cfg(StudyConfig):\n    x: float = 1.0\n\n\n"
        "def run(cfg: Cfg, ctx):\n    ctx.log(0, y=cfg.x ** 2)\n"
        f"    return {{'y': cfg.x ** 2, 'task': {task}}}\n")
    (project / "square.py").write_text(
        "import argparse, json, os\n\np = argparse.ArgumentParser()\n"
        "p.add_argument('--x', type=float)\nx = p.parse_args().x\n"
        f"print('SWEEPLAB_METRICS ' + json.dumps({{'y': x * x, 'task': {task}}}))\n")
    out = tmp_path / "out"
    for name, study in (("own", {"study": "./own.py:run"}),
                        ("square", {"command": "python square.py"})):
        spec = project / f"{name}.yaml"
        spec.write_text(yaml.safe_dump({**study, "grid": {"x": [2.0, 3.0]}}))
        args = ["grid", str(spec), "--executor", "slurm", "--out_dir", str(out), "--time", "5"]
        assert main(args) == 0, capsys.readouterr()
        (grid_dir,) = out.glob(f"*_{name}")
        finals = [_read(grid_dir / f"x={x}" / "final.json") for x in (2, 3)]
        assert [f["y"] for f in finals] == [4.0, 9.0]
        assert sorted(f["task"] for f in finals) == [0.0, 1.0]  # array tasks, not here
        assert (grid_dir / ".submitit").is_dir()
