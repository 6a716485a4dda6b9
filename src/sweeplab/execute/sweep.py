"""The sweep planner: *what* to run in a grid directory, and what is already done.

A grid directory holds ``spec.yaml`` (the spec as given), ``grid.json`` (study, the
spec's folder, creation time, run names), ``master.csv`` and one directory per run,
named by the run's varying parameters. The run directories are the source of truth: a
run is finished when its ``status.json`` says ``done`` for the same config hash as the
spec now asks for. Everything else (failed, interrupted, killed mid-run, config changed)
runs again: from its checkpoint when it has one of the same config, else in a clean
directory, so a resume never duplicates a run or a row.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sweeplab.core.experiment import safe_name
from sweeplab.core.grid import GridSpec, expand, spec_study, validate_runs
from sweeplab.core.rundir import (
    atomic_write_text,
    can_resume,
    is_finished,
    load_json,
    save_json,
)
from sweeplab.errors import ConfigError
from sweeplab.execute.job import Job

GRID_FILE = "grid.json"
SPEC_FILE = "spec.yaml"


@dataclass
class GridPlan:
    """Every job of a grid, split into those to run now and those already done."""

    grid_dir: Path
    spec: GridSpec
    jobs: list[Job]
    todo: list[Job] = field(default_factory=list)
    done: list[Job] = field(default_factory=list)
    varying: list[str] = field(default_factory=list)

    def with_tracking(self, tracking: dict[str, Any]) -> GridPlan:
        """The same plan with every job reporting to the prepared trackers ``tracking``."""
        todo = {job.name for job in self.todo}
        jobs = [replace(job, tracking=tracking) for job in self.jobs]
        return GridPlan(self.grid_dir, self.spec, jobs,
                        [j for j in jobs if j.name in todo],
                        [j for j in jobs if j.name not in todo], self.varying)


def find_grid_dir(out_dir: Path, tag: str) -> Path | None:
    """The newest ``<timestamp>_<tag>`` grid directory under ``out_dir``, if any."""
    suffix = f"_{safe_name(tag)}"
    candidates = [
        p
        for p in out_dir.glob(f"*{suffix}")
        if p.is_dir() and (p / GRID_FILE).is_file() and p.name.endswith(suffix)
    ]
    return max(candidates, key=lambda p: p.name) if candidates else None


def new_grid_dir(out_dir: Path, tag: str) -> Path:
    """Create ``out_dir/<YYYYmmdd-HHMMSS>_<tag>/`` (a ``-N`` suffix if it exists)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(10_000):
        suffix = "" if attempt == 0 else f"-{attempt}"
        path = out_dir / f"{stamp}{suffix}_{safe_name(tag)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a grid directory under {out_dir}")


def plan_grid(
    spec: GridSpec,
    grid_dir: Path,
    threads: int = 1,
    cli: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    rerun_done: bool = False,
) -> GridPlan:
    """Validate every run, then decide which to run now (nothing is written).

    The study's ``grid_defaults`` apply where the spec does not set a key; ``overrides``
    replace a key in every run. ``rerun_done`` runs finished runs again too (a staged
    study then re-uses what its cache still holds). Raises :class:`ConfigError` before
    anything runs if any expanded config is invalid.
    """
    study = spec_study(spec)
    study.check_requirements()
    runs = [replace(run, params={**study.grid_defaults, **run.params, **(overrides or {})})
            for run in expand(spec)]
    validated = validate_runs(spec, runs)
    if study.preflight is not None:
        _preflight(study, validated)
    jobs = []
    for planned, cfg in validated:
        key = study.batch_key(cfg) if study.batchable else None
        jobs.append(
            Job(
                study=study.name,
                config=cfg.canonical(),
                run_dir=str((grid_dir / planned.name).resolve()),
                name=planned.name,
                config_hash=cfg.config_hash(),
                threads=threads,
                cli=cli or {},
                study_module=study.module if study.ref is None else "",
                batch_key=None if key is None else json.dumps(key, sort_keys=True, default=str),
                study_ref=study.ref,
                study_dir=study.base_dir,
            )
        )
    plan = GridPlan(grid_dir, spec, jobs, varying=_varying_keys(jobs))
    for job in jobs:
        finished = is_finished(job.run_dir, job.config_hash)
        (plan.done if finished and not rerun_done else plan.todo).append(job)
    return plan


def _preflight(study: Any, validated: list) -> None:
    """The study's resource checks (dataset files, ...) for every run, before any runs."""
    for planned, cfg in validated:
        try:
            study.preflight(cfg)
        except ConfigError as exc:
            raise exc.located(f"run {planned.name}") from None


def prepare_grid_dir(plan: GridPlan, command: list[str], executor: str) -> None:
    """Write spec.yaml and grid.json; clear the runs about to re-run that cannot resume."""
    grid_dir = plan.grid_dir
    grid_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(grid_dir / SPEC_FILE, plan.spec.source_text)
    info = _read_grid_info(grid_dir)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    study = spec_study(plan.spec)
    info.update(
        study=study.name,
        study_ref=study.ref,
        spec_dir=plan.spec.base_dir,
        created=info.get("created", now),
        updated=now,
        runs=[job.name for job in plan.jobs],
        varying=plan.varying,
        executor=executor,
        command=command,
    )
    info.setdefault("sessions", []).append(
        {"started": now, "todo": len(plan.todo), "done_before": len(plan.done)}
    )
    save_json(info, grid_dir / GRID_FILE)
    if study.staged:
        return  # a staged study's run directory is its cache: it invalidates stages itself
    for job in plan.todo:
        run_dir = Path(job.run_dir)
        if run_dir.exists() and not can_resume(run_dir, job.config_hash):
            shutil.rmtree(run_dir)


def _read_grid_info(grid_dir: Path) -> dict[str, Any]:
    try:
        return load_json(grid_dir / GRID_FILE)
    except (OSError, ValueError):
        return {}


def load_grid_info(grid_dir: Path) -> dict[str, Any]:
    """grid.json of a grid directory; :class:`ConfigError` if it is not one."""
    if not (grid_dir / GRID_FILE).is_file():
        raise ConfigError(
            "grid_dir", str(grid_dir), f"not a sweeplab grid directory (no {GRID_FILE})"
        )
    return load_json(grid_dir / GRID_FILE)


def _varying_keys(jobs: list[Job]) -> list[str]:
    """Config keys whose value differs between jobs, in config order."""
    if not jobs:
        return []
    keys = list(jobs[0].config)
    return [k for k in keys if len({repr(j.config.get(k)) for j in jobs}) > 1]
