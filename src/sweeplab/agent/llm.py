"""A client for OpenAI-compatible chat completions (Ollama, vLLM, llama.cpp server, OpenAI).

:meth:`ChatClient.complete` sends one conversation with httpx and returns the reply,
retrying (tenacity) what a retry can fix: timeouts, dropped connections, HTTP 429 and
5xx, with exponential backoff and a 429's ``Retry-After``. :meth:`ChatClient.complete_json`
asks for a JSON object constrained by a JSON schema, validates the reply locally (servers
may ignore the schema) and re-prompts with the exact error when it is malformed or
invalid; it returns the whole exchange so the registry can keep every prompt and reply.
httpx and tenacity come with the ``llm`` extra (``pip install 'sweeplab[llm]'``); the
offline planner needs neither.

The replies the planner asks for are pydantic models (:func:`proposal_model`, whose
params are :class:`sweeplab.agent.space.SpacePoint`, and :class:`DecisionReply`): the
JSON schema sent with a request (:func:`candidate_schema`, :func:`decision_schema`) and
the local check of the reply come from the same model, so they can never disagree.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from sweeplab.agent.space import describe_validation, point_model
from sweeplab.errors import SweeplabError

T = TypeVar("T")
log = logging.getLogger("sweeplab.agent.llm")

Message = dict[str, Any]

RETRY_AFTER_MAX_S = 60.0
"""The longest ``Retry-After`` a 429 may impose before one retry."""


class LLMError(SweeplabError, RuntimeError):
    """The LLM endpoint failed or never gave a valid reply; the message is one line.

    ``status`` is the HTTP status when the server answered with an error, and
    ``transcript`` the exchange up to the failure (for the registry).
    """

    def __init__(self, message: str, status: int | None = None,
                 transcript: list[Message] | None = None):
        self.status = status
        self.transcript = list(transcript or [])
        super().__init__(one_line(message))


class _Transient(Exception):
    """A failure a retry may fix; ``retry_after`` is the server's wish, in seconds."""

    def __init__(self, message: str, retry_after: float = 0.0):
        super().__init__(message)
        self.retry_after = retry_after


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line, whitespace collapsed, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ChatClient:
    """A chat-completions endpoint: ``POST {base_url}/chat/completions``.

    ``base_url`` includes the API version prefix, as OpenAI clients expect
    (``http://localhost:11434/v1`` for Ollama, ``https://api.openai.com/v1``). A request
    is tried once and retried up to ``retries`` times; before retry ``k`` (0-based) the
    client waits ``backoff * 2**k`` seconds (longer when a 429 says ``Retry-After``).
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 60.0, retries: int = 3, backoff: float = 0.5,
                 max_reprompts: int = 2, temperature: float = 0.2):
        if not base_url.startswith(("http://", "https://")):
            raise LLMError(f"invalid LLM base URL {base_url!r}: must start with http:// "
                           "or https://")
        try:
            import httpx  # noqa: F401
            import tenacity  # noqa: F401
        except ImportError as exc:
            raise LLMError(f"the LLM client needs {exc.name}: pip install "
                           "'sweeplab[llm]' (or run the agent offline, without "
                           "--llm-base-url)") from None
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_reprompts = max_reprompts
        self.temperature = temperature

    @property
    def url(self) -> str:
        """The chat-completions endpoint."""
        return f"{self.base_url}/chat/completions"

    def __repr__(self) -> str:  # never shows the key
        return f"ChatClient({self.base_url!r}, model={self.model!r})"

    def complete(self, messages: list[Message], **extra: Any) -> str:
        """The assistant's reply (``choices[0].message.content``) to ``messages``.

        ``extra`` adds request fields (``response_format``, ``max_tokens``, ...).
        Raises :class:`LLMError` on a non-retryable HTTP error (naming the status and the
        server's message), when the retries are spent, or when the reply has no content.
        """
        body = {"model": self.model,
                "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                "temperature": self.temperature, **extra}
        data = self._post(body)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise LLMError(f"{self.url}: the reply has no choices[0].message.content: "
                           f"{json.dumps(data)[:200]}")
        return content

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON, retrying transient failures; the decoded JSON reply."""
        import httpx
        import tenacity

        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"

        def attempt(http: httpx.Client) -> httpx.Response:
            try:
                response = http.post(self.url, json=body)
            except httpx.TimeoutException:
                raise _Transient(f"timed out after {self.timeout:g}s") from None
            except httpx.TransportError as exc:  # refused, reset, DNS, protocol
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if response.status_code == 429 or response.status_code >= 500:
                wait = response.headers.get("Retry-After", "").strip()
                raise _Transient(f"HTTP {response.status_code}: {_server_message(response)}",
                                 min(float(wait), RETRY_AFTER_MAX_S)
                                 if response.status_code == 429 and wait.isdigit() else 0.0)
            if response.is_error:
                raise LLMError(f"{self.url}: HTTP {response.status_code}: "
                               f"{_server_message(response)}", status=response.status_code)
            return response

        def wait(state: tenacity.RetryCallState) -> float:
            backoff = self.backoff * 2 ** (state.attempt_number - 1)
            return max(backoff, getattr(state.outcome.exception(), "retry_after", 0.0))

        def note(state: tenacity.RetryCallState) -> None:
            log.info("%s: %s; retry %d of %d in %.2g s", self.url, state.outcome.exception(),
                     state.attempt_number, self.retries, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient), wait=wait,
            stop=tenacity.stop_after_attempt(self.retries + 1), before_sleep=note)
        with httpx.Client(headers=headers, timeout=self.timeout) as http:
            try:
                response = retrying(attempt, http)
            except tenacity.RetryError as exc:
                raise LLMError(f"{self.url}: failed after {self.retries + 1} attempt(s): "
                               f"{exc.last_attempt.exception()}") from None
        try:
            data = response.json()
        except ValueError:
            raise LLMError(f"{self.url}: the reply is not JSON: {response.text[:200]}") from None
        if not isinstance(data, dict):
            raise LLMError(f"{self.url}: the reply is not a JSON object: {response.text[:200]}")
        return data

    def complete_json(self, messages: list[Message], schema: dict[str, Any], name: str,
                      parse: Callable[[dict[str, Any]], T]) -> tuple[T, list[Message]]:
        """``parse`` of the JSON object the LLM replies with, and the whole exchange.

        The request carries ``response_format`` (a strict JSON schema); as some servers
        ignore it, the reply is always checked here: the first JSON object in it (a
        ```json fence and text around it are tolerated) must satisfy ``parse`` (which
        raises ``ValueError`` or a pydantic ``ValidationError`` when it is invalid). A
        malformed or invalid reply is answered with the exact error and the schema, up to
        ``max_reprompts`` times. A server that rejects ``response_format`` itself (HTTP
        400 naming it) is asked again without it.

        The transcript lists every message sent and every reply as ``{"role",
        "content"}``; replies also carry ``attempt``, ``seconds`` and ``error`` (None
        when valid). On failure the :class:`LLMError` carries the transcript so far.
        """
        transcript: list[Message] = [dict(m) for m in messages]
        extra: dict[str, Any] = {"response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "strict": True}}}
        error = ""
        for attempt in range(1, self.max_reprompts + 2):
            started = time.monotonic()
            try:
                try:
                    content = self.complete(_chat_only(transcript), **extra)
                except LLMError as exc:
                    if exc.status != 400 or "response_format" not in str(exc) or not extra:
                        raise
                    transcript.append({"role": "note", "content": "the server rejected "
                                       f"response_format ({exc}); asking without it"})
                    extra = {}
                    content = self.complete(_chat_only(transcript))
            except LLMError as exc:
                exc.transcript = transcript
                raise
            log.info("%s: %s reply %d in %.1f s", self.url, name, attempt,
                     time.monotonic() - started)
            reply: Message = {"role": "assistant", "content": content, "attempt": attempt,
                              "seconds": round(time.monotonic() - started, 3), "error": None}
            transcript.append(reply)
            try:
                return parse(extract_json(content)), transcript
            except (ValueError, TypeError, KeyError) as exc:  # incl. pydantic's errors
                error = describe_error(exc)
                reply["error"] = error
                log.info("%s: %s reply %d is invalid: %s", self.url, name, attempt, error)
            if attempt <= self.max_reprompts:
                transcript.append({"role": "user", "content": (
                    f"Your reply was invalid: {error}\nReply again with exactly one JSON "
                    f"object, and nothing else, that satisfies this JSON schema:\n"
                    f"{json.dumps(schema)}")})
        raise LLMError(f"{name}: no valid reply after {self.max_reprompts + 1} attempt(s); "
                       f"last error: {error}", transcript=transcript)


def _chat_only(transcript: list[Message]) -> list[Message]:
    """The chat messages of a transcript (notes left out)."""
    return [m for m in transcript if m["role"] in ("system", "user", "assistant")]


def _server_message(response: Any) -> str:
    """The error message an HTTP error reply carries (OpenAI, Ollama, vLLM shapes)."""
    try:
        data = response.json()
    except ValueError:
        return one_line(response.text or response.reason_phrase, 300)
    if isinstance(data, dict):
        err = data.get("error", data.get("message", data.get("detail")))
        if isinstance(err, dict):
            err = err.get("message", err)
        if err is not None:
            return one_line(err if isinstance(err, str) else json.dumps(err), 300)
    return one_line(response.text, 300)


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL)


def extract_json(text: str) -> dict[str, Any]:
    """The JSON object in an LLM reply.

    Tolerates a ```json fence, text before and after the object and a reasoning model's
    ``<think>`` block; raises ``ValueError`` saying what is wrong otherwise.
    """
    text = _THINK.sub("", text).strip()
    candidates = [block.strip() for block in _FENCE.findall(text)] + [text]
    decoder = json.JSONDecoder()
    first_error: str | None = None
    for chunk in candidates:
        for start in (m.start() for m in re.finditer(r"\{", chunk)):
            try:
                value, _ = decoder.raw_decode(chunk, start)
            except ValueError as exc:
                first_error = first_error or f"invalid JSON: {exc}"
                continue
            if isinstance(value, dict):
                return value
    raise ValueError(first_error or "no JSON object found in the reply")


def describe_error(exc: Exception) -> str:
    """One line for a validation error (pydantic's: :func:`describe_validation`)."""
    if isinstance(exc, ValidationError):
        return one_line(describe_validation(exc))
    if isinstance(exc, KeyError):
        return f"missing key {exc}"
    return one_line(str(exc))


# --- the replies' models and their JSON schemas ----------------------------------------


class DecisionReply(BaseModel):
    """A decision after an iteration, as the LLM writes it."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["continue", "refine", "stop"]
    reason: str


@functools.cache
def proposal_model(family: str | None = None) -> type[BaseModel]:
    """A proposal as the LLM writes it: ``{"rationale": str, "params": a point of the
    space}`` (:func:`~sweeplab.agent.space.point_model`, ``family`` pinned when given)."""
    return create_model("ProposalReply", __config__=ConfigDict(extra="forbid"),
                        rationale=(str, ...), params=(point_model(family), ...))


def candidate_schema(family: str | None = None) -> dict[str, Any]:
    """The JSON schema of a proposal (:func:`proposal_model`)."""
    return proposal_model(family).model_json_schema()


def decision_schema() -> dict[str, Any]:
    """The JSON schema of a decision (:class:`DecisionReply`)."""
    return DecisionReply.model_json_schema()
