"""``sweeplab new KIND NAME``: scaffold a study of your own or a new experiment.

``sweeplab new study NAME`` writes ``NAME.py`` (a runnable one-file study: a typed
config and a run function) and ``NAME.yaml`` (its grid spec) into the current folder
(``--dir`` elsewhere); ``docs/your-study.md`` walks through them.

``sweeplab new volume-experiment NAME`` writes ``runs/configs/volume/NAME.yaml``
(``--dir`` elsewhere): every parameter of the minima-volume study with its description
and default, a seeds grid and the commands that run it, ready to edit.

Neither overwrites a file unless ``--force``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml

from sweeplab.cli.console import console
from sweeplab.cli.flags import OneLineParser
from sweeplab.core.experiment import atomic_write_text
from sweeplab.errors import ConfigError

KINDS = ("study", "volume-experiment")
DIRS = {"study": ".", "volume-experiment": "runs/configs/volume"}
"""Where each kind's files go without ``--dir``."""
SKIPPED = ("stages", "save_interval")
"""Set by ``sweeplab volume``, or unused by the study."""
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def build_parser() -> OneLineParser:
    p = OneLineParser(prog="sweeplab new", description=__doc__.splitlines()[0])
    p.add_argument("kind", help="what to create: " + ", ".join(KINDS))
    p.add_argument("name", help="experiment name (letters, digits, _ . -)")
    p.add_argument("--dir", default=None,
                   help="where the files go (study: the current folder; volume-experiment: "
                        "runs/configs/volume)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    return p


def volume_template(name: str, path: str = "") -> str:
    """The YAML text of a new minima-volume experiment called ``name`` (at ``path``)."""
    from sweeplab.studies.volume.config import VolumeConfig

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


def main(argv: list[str]) -> int:
    """Write the template; exit 2 on an unknown kind, a bad name or an existing file."""
    ns = build_parser().parse_args(argv)
    if ns.kind not in KINDS:
        raise ConfigError("kind", ns.kind, "allowed values are " + ", ".join(KINDS))
    if not NAME_RULE.match(ns.name):
        raise ConfigError("name", ns.name, "use letters, digits, _ . - (no spaces or slashes)")
    folder = Path(ns.dir or DIRS[ns.kind])
    if ns.kind == "study":
        from sweeplab.cli.new_study import study_files

        files = study_files(ns.name)
    else:
        path = folder / f"{ns.name}.yaml"
        files = {path.name: volume_template(ns.name, str(path))}
    for name in files:
        if (folder / name).exists() and not ns.force:
            raise ConfigError("name", ns.name, f"{folder / name} exists; pass --force to "
                              "overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write_text(folder / name, text)
    if ns.kind == "study":
        spec = folder / f"{ns.name}.yaml"
        console.print(f"wrote {folder / ns.name}.py and {spec}; try: sweeplab grid {spec}",
                      highlight=False)
    else:
        path = folder / f"{ns.name}.yaml"
        console.print(f"wrote {path}; run it with: sweeplab volume run {path}", highlight=False)
    return 0
