"""Fixtures of the agent's tests: scripted chat-completions servers."""

from __future__ import annotations

import pytest
from chat_server import ScriptedServer


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
