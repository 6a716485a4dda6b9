"""The entry-point groups through which plugins join sweeplab, read from the installed
packages' metadata only (nothing imported), so ``sweeplab --help`` stays fast.

- ``sweeplab.studies``: study name -> the module that registers it
  (:func:`sweeplab.core.registry.register_study`);
- ``sweeplab.commands``: a CLI verb that is not a study's -> ``module:function``;
- ``sweeplab.analyzers``: a ``sweeplab analyze`` hook for folders that are not runs ->
  ``module:function``, ``function(inputs, out_dir) -> (what, report.md, report.html)``
  or None when the folders are not its own.
"""

from __future__ import annotations

from importlib import metadata

STUDY_ENTRY_POINTS = "sweeplab.studies"
COMMAND_ENTRY_POINTS = "sweeplab.commands"
ANALYZER_ENTRY_POINTS = "sweeplab.analyzers"


def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name (reads metadata, imports nothing)."""
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


def command_names() -> list[str]:
    """The verbs of the ``sweeplab.commands`` entry points."""
    return sorted(entry_points(COMMAND_ENTRY_POINTS))
