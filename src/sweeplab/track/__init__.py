"""Metric sinks: the local files every run writes, and optional experiment trackers.

``local`` writes ``metrics.jsonl``/``metrics.csv`` (the source of truth). ``config``
holds :class:`TrackingConfig` and :func:`prepare_tracking` (run once in the parent);
``trackers`` builds the wandb/MLflow sinks of one run (:func:`make_tracker_sinks`),
each behind a guard that turns a tracker failure into one warning. wandb and mlflow
are imported only when a tracker is on.
"""

from sweeplab.track.config import TrackingConfig, prepare_tracking
from sweeplab.track.trackers import RUN_STATES, SafeTrackerSink, TrackerSink, make_tracker_sinks

__all__ = [
    "RUN_STATES",
    "SafeTrackerSink",
    "TrackerSink",
    "TrackingConfig",
    "make_tracker_sinks",
    "prepare_tracking",
]
