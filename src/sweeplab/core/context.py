"""RunContext: what a study sees of its run directory.

A study logs metrics, saves figures and artifacts through its context and never needs to
know where files go or which trackers listen. Layout of a run directory::

    config.yaml  status.json  provenance.json  final.json
    metrics.jsonl  metrics.csv  figs/  tables/  logs/
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sweeplab.core.config import StudyConfig
from sweeplab.core.experiment import save_json
from sweeplab.track.local import LocalMetricsWriter, MetricSink


class RunContext:
    """Handle a study uses to record its run: metrics, figures, artifacts, warnings."""

    def __init__(
        self,
        run_dir: str | Path,
        config: StudyConfig,
        sinks: Iterable[MetricSink] = (),
        logger: logging.Logger | None = None,
        step_key: str = "epoch",
    ):
        self.run_dir = Path(run_dir)
        self.config = config
        self.logger = logger or logging.getLogger("sweeplab.run")
        self.local = LocalMetricsWriter(self.run_dir, step_key=step_key)
        self.sinks: list[MetricSink] = [self.local, *sinks]
        self.warnings: list[str] = []

    def log(self, step: int, **metrics: float) -> None:
        """Record scalar metrics for ``step`` in metrics.jsonl/.csv and every sink."""
        for sink in self.sinks:
            sink.log(step, metrics)

    def path(self, *parts: str) -> Path:
        """A path inside the run directory (parents created)."""
        path = self.run_dir.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def save_json(self, name: str, obj: Any) -> Path:
        """Save ``obj`` as ``<run_dir>/<name>`` atomically."""
        return save_json(obj, self.path(name))

    def save_figure(
        self, name: str, fig: Any, formats: tuple[str, ...] = ("png", "pdf")
    ) -> list[Path]:
        """Save a matplotlib figure as ``figs/<name>.png`` and ``.pdf``, then close it."""
        from sweeplab.analysis.style import save_figure

        return save_figure(fig, self.path("figs", name), formats=formats)

    def warn(self, message: str) -> None:
        """Log a warning and keep it for ``final.json`` (so it is not lost in a log)."""
        self.logger.warning(message)
        self.warnings.append(message)

    def close(self) -> None:
        """Close every sink (idempotent)."""
        for sink in self.sinks:
            sink.close()
