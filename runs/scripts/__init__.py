"""Thin shims so the spec's `python -m runs.scripts...` commands work from the repo root."""
