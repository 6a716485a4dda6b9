"""Fixtures of the agent's tests: scripted chat-completions servers, one torch thread."""

from __future__ import annotations

import pytest
from chat_server import ScriptedServer

from sweeplab.core.threads import limit_threads


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Train in-process on one thread, as ``sweeplab agent`` does by default (``--threads
    1``): the candidates are small, and more threads only oversubscribe a shared machine."""
    limit_threads(1)


def _servers():
    """Start scripted servers; all are shut down at the end."""
    servers: list[ScriptedServer] = []

    def start(*script: tuple) -> ScriptedServer:
        servers.append(ScriptedServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


serve = pytest.fixture(_servers)
"""Scripted servers of one test."""
serve_module = pytest.fixture(_servers, scope="module", name="serve_module")
"""Scripted servers shared by a module's fixtures (one agent run, several tests)."""
