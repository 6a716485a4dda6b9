"""Thin shim so the spec's ``python -m analysis.run_analysis`` works from the repo root."""
