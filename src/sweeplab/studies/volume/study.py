"""The registered ``minima-volume`` study: train, perturb, volume, cutoff, test.

Reimplements the workflow of Fan, Sandlund & Ko, "Sharp Minima Can Generalize: A Loss
Landscape Perspective On Data" (2025, arXiv 2511.04808) as one staged, cached run per
``model_<seed>_data_<seed>`` (see :mod:`sweeplab.studies.volume.pipeline`). A grid of
such runs is what ``sweeplab volume run CONFIG`` executes in parallel.
"""

from __future__ import annotations

from sweeplab.core.context import RunContext
from sweeplab.core.registry import register_study
from sweeplab.studies.volume.checks import check_data
from sweeplab.studies.volume.config import VolumeConfig

PIPELINE = "sweeplab.studies.volume.pipeline"
"""The stages' work (torch), imported by a worker before its first run, never by the
grid's driver."""


@register_study("minima-volume", config=VolumeConfig, preflight=check_data, staged=True,
                step_key="m", warm=(PIPELINE,))
def run_minima_volume(cfg: VolumeConfig, ctx: RunContext) -> dict[str, float]:
    """Volume of minima vs data: train, perturb, volume, cutoff and test stages, cached."""
    from sweeplab.studies.volume.pipeline import run_pipeline

    return run_pipeline(cfg, ctx)
