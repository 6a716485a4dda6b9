"""A job: one run of a grid as plain, serializable data.

Jobs are what cross from the planner (what to run) to an executor (where it runs): a
study (its name, or the reference and folder that find a user's own study), a validated
config as a plain dict and a run directory. Any executor (this process, a local pool, a
Slurm array) hands them to :func:`sweeplab.execute.worker.run_job` and gets a
:class:`~sweeplab.core.rundir.RunResult` back, so nothing but data crosses a process or
machine boundary.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    """One run: ``study`` with ``config`` (validated, canonical) in ``run_dir``.

    ``study_ref`` (with ``study_dir``, the folder it is relative to), when set, is the
    study reference any process resolves (:func:`~sweeplab.core.registry.resolve_study`):
    a user's file or module, or a command. Otherwise ``study`` is a registered name,
    registered by importing ``study_module``.
    """

    study: str
    config: dict[str, Any]
    run_dir: str
    name: str
    config_hash: str
    threads: int = 1
    cli: dict[str, Any] = field(default_factory=dict)
    study_module: str = ""
    tracking: dict[str, Any] = field(default_factory=dict)
    """A prepared :class:`~sweeplab.track.config.TrackingConfig` as a dict (empty: none)."""
    batch_key: str | None = None
    """Jobs with equal keys may run as one batched computation (None: never batched)."""
    study_ref: Any = None
    study_dir: str = ""

    def resolve_study(self) -> Any:
        """The job's :class:`~sweeplab.core.registry.Study`, found as the planner found it."""
        from sweeplab.core.registry import get_study, resolve_study

        if self.study_ref is not None:
            return resolve_study(self.study_ref, self.study_dir or None)
        if self.study_module:
            importlib.import_module(self.study_module)
        return get_study(self.study)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
