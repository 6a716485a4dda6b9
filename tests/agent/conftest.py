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


@pytest.fixture
def serve():
    """Start scripted servers; all are shut down after the test."""
    servers: list[ScriptedServer] = []

    def start(*script: tuple) -> ScriptedServer:
        servers.append(ScriptedServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
