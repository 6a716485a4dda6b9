"""Grid configs (configs/) and the spec's script entry points (scripts/)."""
