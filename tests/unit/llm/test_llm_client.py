"""The HTTP adapter against httpx.MockTransport: every status and failure, no network."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from lexi_maint.config.llm import RetrySettings
from lexi_maint.errors import DocumentError, ErrorClass, JobStopError
from lexi_maint.llm.client import (
    ChatClient,
    ChatRequest,
    ClientSettings,
    Completion,
    backoff_delay,
    parse_retry_after,
)
from lexi_maint.llm.keys import REDACTED, api_key
from lexi_maint.llm.slots import LocalSlots
from lexi_maint.llm.usage import Tokens

SECRET = "sk-client-test-5678"
REQUEST = ChatRequest("deepseek-reasoner", (("system", "s"), ("user", "u")), max_tokens=100)
RETRY = RetrySettings(max_retries=3, backoff_initial=1.0, backoff_max=8.0)
Handler = Callable[[httpx.Request], httpx.Response]


def ok(content: str = '{"a": 1}', **usage: Any) -> httpx.Response:
    body = {
        "choices": [
            {
                "message": {"content": content, "reasoning_content": "thinking out loud"},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 80,
            "prompt_cache_hit_tokens": 64,
            "completion_tokens_details": {"reasoning_tokens": 60},
            **usage,
        },
    }
    return httpx.Response(200, json=body)


def error(status: int, message: str = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message}}, headers=headers)


class Script:
    """Answers requests from a list of responses (or exceptions); records what it saw."""

    def __init__(self, *steps: httpx.Response | Exception) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def run(handler: Handler | httpx.AsyncBaseTransport, *, deadline: float = 30.0,
        retry: RetrySettings = RETRY) -> tuple[Completion | Exception, list[float]]:  # fmt: skip
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> Completion:
        settings = ClientSettings("http://llm.test/chat/completions", 1.0, 1.0, deadline, retry, 4)
        transport = (
            handler
            if isinstance(handler, httpx.AsyncBaseTransport)
            else httpx.MockTransport(handler)
        )
        async with ChatClient(
            settings, api_key(SECRET, "test"), LocalSlots(2), transport=transport,
            sleep=sleep, rand=lambda: 0.0,
        ) as client:  # fmt: skip
            return await client.complete(REQUEST)

    try:
        return asyncio.run(go()), slept
    except Exception as exc:
        return exc, slept


def test_an_answer_gives_content_and_token_counts_but_no_reasoning_text() -> None:
    script = Script(ok())
    result, slept = run(script)
    assert result == Completion('{"a": 1}', "stop", Tokens(120, 80, 60, 64))
    assert "thinking" not in repr(result)
    sent = script.requests[0]
    assert sent.headers["Authorization"] == f"Bearer {SECRET}"
    assert sent.url == "http://llm.test/chat/completions"
    assert json.loads(sent.content) == REQUEST.payload()
    assert slept == []


def test_429_waits_what_retry_after_says_then_retries() -> None:
    script = Script(error(429, **{"Retry-After": "7"}), ok())
    result, slept = run(script)
    assert isinstance(result, Completion)
    assert slept == [7.0]  # rand() = 0: no jitter added on top
    assert len(script.requests) == 2


@pytest.mark.parametrize("status", [500, 503, 502, 408])
def test_server_errors_back_off_exponentially(status: int) -> None:
    script = Script(error(status), error(status), error(status), ok())
    result, slept = run(script)
    assert isinstance(result, Completion)
    assert slept == [0.5, 1.0, 2.0]  # initial 1 s doubled, scaled by 0.5 + 0.5 x rand()


def test_connection_resets_are_retried() -> None:
    script = Script(httpx.ReadError("connection reset by peer"), httpx.ConnectError(""), ok())
    result, slept = run(script)
    assert isinstance(result, Completion)
    assert len(slept) == 2


def test_a_malformed_body_is_retried() -> None:
    script = Script(httpx.Response(200, content=b"<html>bad gateway</html>"), ok())
    result, _ = run(script)
    assert isinstance(result, Completion)


def test_blank_keepalive_lines_before_the_body_are_fine() -> None:
    body = b"\n\n\n" + ok().content
    result, _ = run(Script(httpx.Response(200, content=body)))
    assert isinstance(result, Completion) and result.content == '{"a": 1}'


def test_retries_run_out_into_a_retryable_document_error_naming_the_last_cause() -> None:
    result, slept = run(Script(*(error(503, "Server Overloaded") for _ in range(4))))
    assert isinstance(result, DocumentError) and not isinstance(result, JobStopError)
    assert result.error_class is ErrorClass.LLM_UNAVAILABLE and result.retryable
    assert "4 attempts" in result.message and "HTTP 503" in result.message
    assert "Server Overloaded" in result.message
    assert len(slept) == 3


@pytest.mark.parametrize("status", [400, 422])
def test_request_errors_fail_the_document_at_once_with_the_api_message(status: int) -> None:
    script = Script(error(status, "max_tokens is too large"))
    result, slept = run(script)
    assert isinstance(result, DocumentError) and not isinstance(result, JobStopError)
    assert result.error_class is ErrorClass.LLM_BAD_REQUEST and not result.retryable
    assert f"HTTP {status}" in result.message and "max_tokens is too large" in result.message
    assert len(script.requests) == 1 and slept == []


def test_401_stops_the_job_and_is_not_retried() -> None:
    script = Script(error(401, "Authentication Fails"))
    result, _ = run(script)
    assert isinstance(result, JobStopError)
    assert result.error_class is ErrorClass.LLM_AUTH and not result.retryable
    assert len(script.requests) == 1


def test_402_stops_the_job_and_leaves_the_document_for_later() -> None:
    result, _ = run(Script(error(402, "Insufficient Balance")))
    assert isinstance(result, JobStopError)
    assert result.error_class is ErrorClass.LLM_BALANCE and result.retryable
    assert "top up" in result.message


def test_a_key_echoed_by_the_api_is_redacted() -> None:
    result, _ = run(Script(error(400, f"bad header Bearer {SECRET}")))
    assert isinstance(result, DocumentError)
    assert SECRET not in result.message and SECRET not in str(result)
    assert REDACTED in result.message


def test_the_deadline_bounds_an_answer_that_never_completes() -> None:
    class Stalling(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            Stalling.calls += 1
            await asyncio.sleep(60)  # keep-alive lines would keep httpx's read timeout happy
            raise AssertionError("the deadline should have cancelled this")

    retry = RetrySettings(max_retries=1, backoff_initial=0.0, backoff_max=0.0)
    result, _ = run(Stalling(), deadline=0.05, retry=retry)
    assert isinstance(result, DocumentError)
    assert result.error_class is ErrorClass.LLM_UNAVAILABLE
    assert "request_deadline (0.05 s)" in result.message
    assert Stalling.calls == 2


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_delay() -> None:
    assert backoff_delay(RETRY, 0, None, lambda: 1.0) == 1.0
    assert backoff_delay(RETRY, 5, None, lambda: 1.0) == 8.0  # capped at backoff_max
    assert backoff_delay(RETRY, 0, 10.0, lambda: 1.0) == pytest.approx(11.0)  # up to +10 %


def test_the_request_key_covers_model_messages_and_parameters() -> None:
    same = ChatRequest("deepseek-reasoner", (("system", "s"), ("user", "u")), max_tokens=100)
    assert same.key == REQUEST.key and len(REQUEST.key) == 64
    for other in (
        ChatRequest("deepseek-chat", REQUEST.messages, 100),
        ChatRequest(REQUEST.model, (("system", "s"), ("user", "v")), 100),
        ChatRequest(REQUEST.model, REQUEST.messages, 101),
        ChatRequest(REQUEST.model, REQUEST.messages, 100, response_format="json_object"),
        ChatRequest(REQUEST.model, REQUEST.messages, 100, temperature=0.0),
    ):
        assert other.key != REQUEST.key
