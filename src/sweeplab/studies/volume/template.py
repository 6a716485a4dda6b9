"""``sweeplab new volume-experiment NAME``: a minima-volume experiment config to edit.

Every parameter of the study with its description and default, a seeds grid, and the
commands that run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml

from sweeplab.studies.volume.config import VolumeConfig

SKIPPED = ("stages", "save_interval")
"""Set by ``sweeplab volume``, or unused by the study."""


def experiment_files(name: str, folder: Path) -> dict[str, str]:
    """The files of a new experiment ``name`` in ``folder``: ``NAME.yaml``."""
    path = Path(folder) / f"{name}.yaml"
    return {path.name: volume_template(name, str(path))}


def volume_template(name: str, path: str = "") -> str:
    """The YAML text of a new minima-volume experiment called ``name`` (at ``path``)."""
    defaults = VolumeConfig().canonical()
    path = path or f"runs/configs/volume/{name}.yaml"
    lines = [
        f"# Minima-volume experiment {name!r} (made by: sweeplab new volume-experiment {name}).",
        "# Every run trains one model per extra_sizes value on base_size + m samples, perturbs",
        "# it along n_directions random directions and measures the volume of its minimum in",
        "# each landscape (docs/volume.md). Edit the values, then:",
        f"#   sweeplab volume run {path}",
        f"#   sweeplab volume stage perturb {path}   (one stage)",
        "#   sweeplab analyze --input_dir runs_out/<grid dir> --output_dir analysis_results/x",
        "study: minima-volume",
        f"name: {name}",
        'run_name: "model_{model_seed}_data_{data_seed}"',
        "fixed:",
    ]
    for key, field in VolumeConfig.ordered_fields().items():
        if key in SKIPPED or key in ("model_seed", "data_seed"):
            continue
        value = yaml.safe_dump({key: defaults[key]}, default_flow_style=True, width=1000)
        choices = get_args(field.annotation) if get_origin(field.annotation) is Literal else ()
        allowed = f" (one of: {', '.join(map(str, choices))})" if choices else ""
        lines.append(f"  # {field.description}{allowed}")
        lines.append("  " + value.strip().removeprefix("{").removesuffix("}"))
    lines += ["grid:", "  model_seed: [0, 1]", "  data_seed: [0, 1]", ""]
    return "\n".join(lines)
