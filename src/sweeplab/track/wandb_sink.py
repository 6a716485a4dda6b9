"""Weights & Biases as a metric sink: one wandb run per sweeplab run.

Each sink owns its own ``wandb.Run`` (``reinit="create_new"``), so a warm worker that
runs many runs one after another starts a fresh wandb run each time and never logs
through the global ``wandb.log``. The wandb run id is kept in ``<run_dir>/trackers.json``
and the run is started with ``resume="allow"``: a resumed sweeplab run continues the
same wandb run. wandb wants steps that never decrease, so a step below the last one
logged is skipped (an earlier step logged again by a resumed run); the same step logged
twice is merged into one history row, as wandb does.

wandb is kept fast and quiet: no console capture, no git or code saving, no system
metrics, no requirements file, nothing printed.
"""

from __future__ import annotations

import os
import secrets
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweeplab.core.experiment import to_jsonable
from sweeplab.track.config import WANDB_MODE_ALIASES, TrackingConfig
from sweeplab.track.trackers import read_tracker_ids, scalar_metrics, write_tracker_id

EXIT_CODES = {"done": 0, "failed": 1, "interrupted": 255}
"""Run state -> the exit code wandb records (255 is what wandb uses for Ctrl-C)."""

INIT_TIMEOUT_S = 30.0
"""How long ``wandb.init`` may wait for wandb's service before it gives up."""

QUIET_SETTINGS: dict[str, Any] = {
    "silent": True,
    "console": "off",
    "disable_git": True,
    "save_code": False,
    "disable_job_creation": True,
    "x_disable_stats": True,
    "x_disable_meta": True,
    "x_disable_machine_info": True,
    "x_save_requirements": False,
    "init_timeout": INIT_TIMEOUT_S,
}
"""wandb settings that keep ``wandb.init`` quick and silent (see the module docstring)."""

_ID_ALPHABET = string.ascii_lowercase + string.digits


def quiet_settings(settings_cls: Any) -> dict[str, Any]:
    """:data:`QUIET_SETTINGS` less the fields this wandb version lacks (it rejects them)."""
    fields = getattr(settings_cls, "model_fields", None)
    if fields is None:
        return dict(QUIET_SETTINGS)
    return {k: v for k, v in QUIET_SETTINGS.items() if k in fields}


def new_run_id() -> str:
    """A fresh wandb run id: 8 random lowercase letters and digits, like wandb's own."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


class WandbSink:
    """Logs a run's metrics, final summary and end state to a wandb run."""

    name = "wandb"

    def __init__(
        self,
        tracking: TrackingConfig,
        *,
        run_dir: str | Path,
        run_name: str,
        study: str,
        config: Mapping[str, Any],
    ):
        import wandb

        run_dir = Path(run_dir)
        # read now: wandb reads the environment once per process, at its first init
        wandb_dir = tracking.wandb_dir or os.environ.get("WANDB_DIR") or None
        mode = tracking.wandb_mode or os.environ.get("WANDB_MODE") or None
        mode = WANDB_MODE_ALIASES.get(mode, mode)
        if wandb_dir:
            # wandb silently falls back to a temp folder when its dir is unusable: fail here
            Path(wandb_dir).mkdir(parents=True, exist_ok=True)
        saved = read_tracker_ids(run_dir).get("wandb", {})
        same_target = (saved.get("project") == tracking.wandb_project
                       and saved.get("entity") == tracking.wandb_entity)
        run_id = saved.get("run_id") if same_target else None
        if not run_id:
            run_id = new_run_id()
            # written before init: a run that dies during init resumes the same id
            write_tracker_id(run_dir, "wandb", {"run_id": run_id,
                                                "project": tracking.wandb_project,
                                                "entity": tracking.wandb_entity})
        self.run = wandb.init(
            project=tracking.wandb_project,
            entity=tracking.wandb_entity,
            name=run_name,
            group=tracking.group,
            config={**to_jsonable(dict(config)), "study": study},
            dir=wandb_dir,
            mode=mode,
            id=run_id,
            resume="allow",
            reinit="create_new",
            settings=wandb.Settings(**quiet_settings(wandb.Settings)),
        )
        # a resumed online run starts at its last step + 1; a new or offline one at 0
        self._min_step = int(self.run.step or 0)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """``run.log(metrics, step=step)``; a step below the last one logged is skipped."""
        step = int(step)
        if step < self._min_step:
            return
        values = scalar_metrics(metrics)
        if values:
            self.run.log(values, step=step)
            self._min_step = step

    def summary(self, final: Mapping[str, Any]) -> None:
        """Put the final metrics in the wandb run's summary."""
        self.run.summary.update(to_jsonable(dict(final)))

    def close(self, state: str = "done") -> None:
        """Finish the wandb run with the exit code of ``state`` (0 done, 1 failed, 255)."""
        self.run.finish(exit_code=EXIT_CODES[state])
