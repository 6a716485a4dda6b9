"""The registered ``minima-volume`` study: train, perturb, volume, cutoff, test.

Reimplements the workflow of Fan, Sandlund & Ko, "Sharp Minima Can Generalize: A Loss
Landscape Perspective On Data" (2025, arXiv 2511.04808) as one staged, cached run per
``model_<seed>_data_<seed>`` (see :mod:`sweeplab.studies.volume.pipeline`). A grid of
such runs is what ``sweeplab volume run CONFIG`` executes in parallel; runs of equal
:func:`.batch_keys.batch_key` (the seeds of a grid, ...) train their models as one batch
(``batch: auto``, the default; :mod:`.runs_together`).
"""

from __future__ import annotations

from typing import Any

from sweeplab.core.context import RunContext
from sweeplab.core.registry import Template, register_study
from sweeplab.studies.volume.batch_keys import batch_key
from sweeplab.studies.volume.checks import check_data
from sweeplab.studies.volume.config import VolumeConfig

PIPELINE = "sweeplab.studies.volume.pipeline"
"""The stages' work (torch), imported by a worker before its first run, never by the
grid's driver."""

EXPERIMENT = Template(
    "volume-experiment", "sweeplab.studies.volume.template:experiment_files",
    folder="runs/configs/volume",
    description="a minima-volume experiment config: every parameter with its description",
    next="run it with: sweeplab volume run {path}",
)


def run_volume_batch(cfgs: list[VolumeConfig], ctxs: list[RunContext]) -> list[Any]:
    """Runs of one batch key: their models train as one batch (:mod:`.runs_together`)."""
    from sweeplab.studies.volume.runs_together import run_batch

    return run_batch(cfgs, ctxs)


@register_study("minima-volume", config=VolumeConfig, preflight=check_data, staged=True,
                step_key="m", warm=(PIPELINE,),
                analysis="sweeplab.studies.volume.analysis:ANALYSIS",
                commands={"volume": "sweeplab.studies.volume.cli:main"},
                templates=(EXPERIMENT,), extra="sweeplab[volume]",
                requires=("torch", "sklearn", "scipy", "matplotlib", "pandas"),
                batch_key=batch_key, run_batch=run_volume_batch)
def run_minima_volume(cfg: VolumeConfig, ctx: RunContext) -> dict[str, float]:
    """Volume of minima vs data: train, perturb, volume, cutoff and test stages, cached."""
    from sweeplab.studies.volume.pipeline import run_pipeline

    return run_pipeline(cfg, ctx)
