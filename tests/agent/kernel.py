"""Whether this machine gives sandboxed candidates kernel isolation (bubblewrap).

The tests about isolation itself skip where it is missing, saying why; the others run the
agent there with ``--unsafe-no-isolation`` (the agent refuses to run without one or the
other), so a machine without bubblewrap still tests everything it can.
"""

from __future__ import annotations

from sweeplab.agent.sandbox import probe_isolation

KERNEL = probe_isolation().namespaces
REASON = probe_isolation().reason
CLI_FLAGS = [] if KERNEL else ["--unsafe-no-isolation"]
"""Flags of ``sweeplab agent`` runs in tests that are not about isolation."""
