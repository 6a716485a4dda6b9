"""``sweeplab new KIND NAME``: scaffold a study of your own, or what a study offers.

``sweeplab new study NAME`` writes ``NAME.py`` (a runnable one-file study: a typed
config and a run function) and ``NAME.yaml`` (its grid spec) into the current folder
(``--dir`` elsewhere); ``docs/your-study.md`` walks through them.

Every other kind is a template an installed study offers (its ``templates``), e.g. an
experiment config to edit; ``sweeplab new --help`` lists them. Nothing is overwritten
unless ``--force``.
"""

from __future__ import annotations

import re
from pathlib import Path

from sweeplab.cli.console import console
from sweeplab.cli.flags import OneLineParser
from sweeplab.core.registry import Template, load_object, study_templates
from sweeplab.core.rundir import atomic_write_text
from sweeplab.errors import ConfigError

STUDY_KIND = "study"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def build_parser(kinds: list[str]) -> OneLineParser:
    p = OneLineParser(prog="sweeplab new", description=__doc__.splitlines()[0])
    p.add_argument("kind", help="what to create: " + ", ".join(kinds))
    p.add_argument("name", help="its name (letters, digits, _ . -)")
    p.add_argument("--dir", default=None,
                   help="where the files go (study: the current folder; a study's template: "
                        "the folder it names)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    return p


def _own_study_files(name: str, folder: Path) -> dict[str, str]:
    from sweeplab.cli.new_study import study_files

    return study_files(name)


OWN_STUDY = Template(STUDY_KIND, _own_study_files, ".", "a runnable one-file study and its "
                     "grid spec", "try: sweeplab grid {spec}")


def main(argv: list[str]) -> int:
    """Write the template; exit 2 on an unknown kind, a bad name or an existing file."""
    templates = {STUDY_KIND: OWN_STUDY, **study_templates()}
    ns = build_parser(list(templates)).parse_args(argv)
    template = templates.get(ns.kind)
    if template is None:
        raise ConfigError("kind", ns.kind, "allowed values are " + ", ".join(templates))
    if not NAME_RULE.match(ns.name):
        raise ConfigError("name", ns.name, "use letters, digits, _ . - (no spaces or slashes)")
    folder = Path(ns.dir or template.folder)
    files = load_object(template.make)(ns.name, folder)
    for name in files:
        if (folder / name).exists() and not ns.force:
            raise ConfigError("name", ns.name, f"{folder / name} exists; pass --force to "
                              "overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        atomic_write_text(folder / name, text)
    written = [folder / name for name in files]
    said = " and ".join(str(path) for path in written)
    spec = next((p for p in written if p.suffix in (".yaml", ".yml")), written[0])
    hint = template.next.format(path=written[0], spec=spec)
    console.print(f"wrote {said}" + (f"; {hint}" if hint else ""), highlight=False)
    return 0
