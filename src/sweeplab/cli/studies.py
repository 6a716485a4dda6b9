"""``sweeplab studies [STUDY ...]``: the installed studies (or the ones named, your own
``./mystudy.py:run`` too), their parameters, and the verbs and templates they add."""

from __future__ import annotations

from rich.table import Table

from sweeplab.cli.console import console
from sweeplab.core.registry import resolve_study, study_names


def main(argv: list[str]) -> int:
    """Print each study (or only those named in ``argv``) with its parameters."""
    for name in argv or study_names():
        study = resolve_study(name)
        table = Table(title=f"{name}: {study.description}", title_justify="left")
        for col in ("parameter", "default", "description"):
            table.add_column(col)
        for key, field in study.config.ordered_fields().items():
            table.add_row(key, str(field.get_default(call_default_factory=True)),
                          field.description or "")
        console.print(table)
        for verb in study.commands:
            console.print(f"  verb: sweeplab {verb} ... (sweeplab {verb} --help)",
                          highlight=False, markup=False)
        for template in study.templates:
            console.print(f"  template: sweeplab new {template.kind} NAME: "
                          f"{template.description}", highlight=False, markup=False)
        if study.extra:
            console.print(f"  installed by: pip install '{study.extra}'",
                          highlight=False, markup=False)
    return 0
