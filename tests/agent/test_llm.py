"""The chat client against a real local HTTP server that answers from a script.

:class:`ScriptedServer` speaks ``POST /v1/chat/completions`` like Ollama or vLLM and
records every request, so the tests check what went over the wire (retries, re-prompts
with the error text, the schema, the key) as well as what the client returns.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any

import pytest
from chat_server import ScriptedServer, delay, raw, reply, status
from pydantic import BaseModel, ConfigDict, Field

from sweeplab.agent.llm import (
    ChatClient,
    LLMError,
    candidate_schema,
    decision_schema,
    extract_json,
)
from sweeplab.agent.space import SPACE, space_dims
from sweeplab.errors import SweeplabError


def client(server: ScriptedServer, **kwargs: Any) -> ChatClient:
    """A fast client: short timeout, tiny backoff."""
    return ChatClient(server.url, "test-model", **{"timeout": 0.2, "backoff": 0.01, **kwargs})


class Point(BaseModel):
    """A parse target with a range, so a reply can violate it."""

    model_config = ConfigDict(extra="forbid")
    channels: int = Field(ge=8, le=64)
    family: str


GOOD = json.dumps({"channels": 16, "family": "cnn"})
MESSAGES = [{"role": "system", "content": "You are a researcher."},
            {"role": "user", "content": "Propose a point."}]
SCHEMA = {"type": "object", "properties": {"channels": {"type": "integer", "minimum": 8,
                                                        "maximum": 64},
                                           "family": {"type": "string"}},
          "required": ["channels", "family"], "additionalProperties": False}


def ask(chat: ChatClient) -> tuple[Point, list[dict]]:
    return chat.complete_json(MESSAGES, SCHEMA, "point", Point.model_validate)


def test_valid_reply_sends_model_messages_schema_and_key(serve):
    server = serve(reply(GOOD))
    point, transcript = ask(client(server, api_key="sk-test", temperature=0.3))
    assert point == Point(channels=16, family="cnn")
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "test-model" and body["temperature"] == 0.3
    assert body["messages"] == MESSAGES
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "point", "schema": SCHEMA, "strict": True}}
    assert [m["role"] for m in transcript] == ["system", "user", "assistant"]
    assert transcript[-1]["content"] == GOOD and transcript[-1]["error"] is None


def test_no_authorization_header_without_a_key(serve):
    server = serve(reply("hello"))
    assert client(server).complete(MESSAGES) == "hello"
    assert "Authorization" not in server.requests[0]["headers"]
    assert "response_format" not in server.requests[0]["body"]


def test_malformed_json_is_reprompted_with_the_error(serve):
    server = serve(reply('{"channels": 16, "family": }'), reply(GOOD))
    point, transcript = ask(client(server))
    assert point.channels == 16
    first, second = server.bodies()
    assert second["messages"][:2] == first["messages"]
    assistant, user = second["messages"][2:]
    assert assistant == {"role": "assistant", "content": '{"channels": 16, "family": }'}
    assert "invalid JSON: Expecting value" in user["content"]
    assert json.dumps(SCHEMA) in user["content"]
    replies = [m for m in transcript if m["role"] == "assistant"]
    assert [r["attempt"] for r in replies] == [1, 2]
    assert "Expecting value" in replies[0]["error"] and replies[1]["error"] is None


def test_out_of_range_reply_is_reprompted_with_the_key_and_bound(serve):
    server = serve(reply(json.dumps({"channels": 100, "family": "cnn"})), reply(GOOD))
    point, _ = ask(client(server))
    assert point.channels == 16
    reprompt = server.bodies()[1]["messages"][-1]["content"]
    assert "channels=100: Input should be less than or equal to 64" in reprompt


def test_fenced_reply_with_text_around_is_accepted(serve):
    server = serve(reply(f"Sure! Here is my proposal:\n```json\n{GOOD}\n```\nGood luck."))
    point, _ = ask(client(server))
    assert point == Point(channels=16, family="cnn")
    assert len(server.requests) == 1


def test_reprompts_are_bounded(serve):
    server = serve(*[reply("no json here")] * 5)
    with pytest.raises(LLMError, match=r"point: no valid reply after 3 attempt\(s\); last "
                                       r"error: no JSON object found") as info:
        ask(client(server, max_reprompts=2))
    assert len(server.requests) == 3
    assert [m["attempt"] for m in info.value.transcript if m["role"] == "assistant"] == [1, 2, 3]


def test_http_500_is_retried_with_the_same_request(serve):
    server = serve(status(500, "overloaded"), reply(GOOD))
    point, _ = ask(client(server))
    assert point.channels == 16
    first, second = server.bodies()
    assert first == second


def test_http_429_is_retried(serve):
    server = serve(status(429, "rate limited"), reply("ok"))
    assert client(server).complete(MESSAGES) == "ok"
    assert len(server.requests) == 2


def test_a_timeout_is_retried(serve):
    server = serve(delay(0.6, "late"), reply("on time"))
    assert client(server, timeout=0.2).complete(MESSAGES) == "on time"
    assert len(server.requests) == 2


def test_http_400_is_not_retried_and_names_status_and_message(serve):
    server = serve(status(400, "model 'test-model' not found"), reply("never sent"))
    with pytest.raises(LLMError, match=r"HTTP 400: model 'test-model' not found") as info:
        client(server).complete(MESSAGES)
    assert len(server.requests) == 1
    assert info.value.status == 400
    assert isinstance(info.value, SweeplabError) and isinstance(info.value, RuntimeError)
    assert "\n" not in str(info.value)


def test_backoff_doubles_between_retries_and_honours_retry_after(serve, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    server = serve(status(500, "overloaded"), status(503, "busy"),
                   status(429, "slow down", {"Retry-After": "3"}), reply("finally"))
    chat = client(server, retries=3, backoff=0.25)
    assert chat.complete(MESSAGES) == "finally"
    assert len(server.requests) == 4
    # before retry k (0-based): backoff * 2**k, raised to the server's Retry-After
    assert waits == [0.25, 0.5, 3.0]


def test_exhausted_retries_raise_with_the_last_failure(serve):
    server = serve(*[status(503, "try later")] * 4, reply("too late"))
    with pytest.raises(LLMError, match=r"failed after 3 attempt\(s\): HTTP 503: try later"):
        client(server, retries=2).complete(MESSAGES)
    assert len(server.requests) == 3


def test_connection_refused_is_retried_then_raises():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    chat = ChatClient(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.0)
    with pytest.raises(LLMError, match=r"failed after 2 attempt\(s\): ConnectError: .*"
                                       r"Connection refused"):
        chat.complete(MESSAGES)


def test_a_reply_without_content_is_an_error(serve):
    server = serve(raw(200, json.dumps({"choices": []})), raw(200, "<html>proxy</html>"))
    with pytest.raises(LLMError, match=r"no choices\[0\]\.message\.content"):
        client(server).complete(MESSAGES)
    with pytest.raises(LLMError, match="the reply is not JSON: <html>proxy"):
        client(server).complete(MESSAGES)


def test_a_server_rejecting_response_format_is_asked_without_it(serve):
    server = serve(status(400, "Invalid parameter: 'response_format' of type 'json_schema' "
                               "is not supported with this model"), reply("{}"), reply(GOOD))
    point, transcript = ask(client(server))
    assert point.channels == 16
    first, second, third = server.bodies()
    assert "response_format" in first and "response_format" not in second
    assert second["messages"] == MESSAGES
    assert "response_format" not in third  # nor in the re-prompt
    assert [m["role"] for m in third["messages"]] == ["system", "user", "assistant", "user"]
    assert any(m["role"] == "note" and "response_format" in m["content"] for m in transcript)


def test_without_the_llm_extra_the_client_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # as if it were not installed
    with pytest.raises(LLMError, match=r"the LLM client needs httpx: pip install "
                                       r"'sweeplab\[llm\]'"):
        ChatClient("http://127.0.0.1:9/v1", "m")


def test_base_url_must_be_http():
    with pytest.raises(LLMError, match="must start with http"):
        ChatClient("localhost:11434/v1", "m")


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1}', {"a": 1}),
    ('```json\n{"a": 1}\n```', {"a": 1}),
    ('```\n{"a": {"b": [1, 2]}}\n```', {"a": {"b": [1, 2]}}),
    ('I propose {"a": 1} because it is small.', {"a": 1}),
    ('<think>maybe {"a": 0}?</think>\n{"a": 2}', {"a": 2}),
])
def test_extract_json_tolerates_fences_and_text(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize(("text", "error"), [
    ("no object", "no JSON object found"),
    ("[1, 2]", "no JSON object found"),
    ('{"a": 1,}', "invalid JSON"),
])
def test_extract_json_says_what_is_wrong(text, error):
    with pytest.raises(ValueError, match=error):
        extract_json(text)


def test_candidate_schema_mirrors_the_space():
    schema = candidate_schema()
    assert schema["required"] == ["rationale", "params"]
    assert schema["additionalProperties"] is False
    params = schema["$defs"][schema["properties"]["params"]["$ref"].split("/")[-1]]
    assert params["required"] == list(SPACE) and params["additionalProperties"] is False
    props = params["properties"]
    assert props["family"]["enum"] == ["cnn", "mlp"] and props["family"]["type"] == "string"
    assert props["kernel_size"]["enum"] == [3, 5] and props["kernel_size"]["type"] == "integer"
    assert props["batchnorm"]["enum"] == [False, True]
    assert (props["channels"]["type"], props["channels"]["minimum"],
            props["channels"]["maximum"]) == ("integer", 8, 64)
    assert (props["lr"]["type"], props["lr"]["minimum"], props["lr"]["maximum"]) == (
        "number", 1e-4, 1e-2)
    pinned = candidate_schema("cnn")
    pinned = pinned["$defs"][pinned["properties"]["params"]["$ref"].split("/")[-1]]
    assert pinned["properties"]["family"]["const"] == "cnn"
    decision = decision_schema()
    assert decision["properties"]["action"]["enum"] == ["continue", "refine", "stop"]
    assert decision["required"] == ["action", "reason"]
    assert decision["additionalProperties"] is False
    logs = {d.name for d in space_dims() if d.log}
    assert logs == {"channels", "mlp_width", "lr"}
    assert [d.describe() for d in space_dims()][:3] == [
        'family: one of ["cnn", "mlp"]', "conv_blocks: integer in [1, 3]",
        "channels: integer in [8, 64] (log scale)"]
