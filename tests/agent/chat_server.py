"""A real OpenAI-compatible chat-completions server for the agent's tests.

:class:`ScriptedServer` speaks ``POST /v1/chat/completions`` like Ollama or vLLM, answers
each request with the next step of its script and records every request, so tests check
what went over the wire as well as what the client returns.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def reply(content: str) -> tuple:
    """A 200 chat completion whose message is ``content``."""
    return ("reply", content)


def status(code: int, message: str = "scripted error",
           headers: dict[str, str] | None = None) -> tuple:
    """An HTTP error with an OpenAI-style ``{"error": {"message": ...}}`` body (and
    ``headers``, e.g. ``Retry-After``)."""
    return ("status", code, message, dict(headers or {}))


def delay(seconds: float, content: str) -> tuple:
    """A reply sent only after ``seconds``."""
    return ("delay", seconds, content)


def raw(code: int, body: str) -> tuple:
    """Any body with any status."""
    return ("raw", code, body)


class ScriptedServer:
    """An OpenAI-compatible endpoint on 127.0.0.1 answering each request with the next
    step of its script (an unscripted request gets HTTP 418, which is not retried)."""

    def __init__(self, script: list[tuple]):
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body})
                    step = outer.script.pop(0) if outer.script else ("status", 418, "unscripted")
                if self.path != "/v1/chat/completions":
                    step = ("status", 404, f"no route {self.path}")
                try:
                    self._answer(step)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass

            def _answer(self, step: tuple) -> None:
                kind, headers = step[0], {}
                if kind == "delay":
                    time.sleep(step[1])
                    kind, step = "reply", ("reply", step[2])
                if kind == "reply":
                    code, text = 200, json.dumps({
                        "id": "chatcmpl-1", "object": "chat.completion",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": {
                            "role": "assistant", "content": step[1]}}]})
                elif kind == "status":
                    code, text = step[1], json.dumps({"error": {"message": step[2],
                                                                "type": "scripted"}})
                    headers = step[3] if len(step) > 3 else {}
                else:
                    code, text = step[1], step[2]
                data = text.encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The base URL a client is given (with the ``/v1`` prefix)."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies received, in order."""
        return [r["body"] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
