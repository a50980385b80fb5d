"""Every failure mode of the model API, against the real test server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lexi_maint.config.llm import LlmConfig, RetrySettings
from lexi_maint.errors import DocumentError, ErrorClass, JobStopError
from lexi_maint.llm.cache import ResponseCache
from lexi_maint.llm.client import ChatClient, ChatRequest, ClientSettings, Completion
from lexi_maint.llm.keys import REDACTED, api_key
from lexi_maint.llm.session import AnswerRejected, InvalidAnswer, LlmSession
from lexi_maint.llm.slots import FileSlots
from lexi_maint.llm.usage import UsageMeter
from tests.llm_server import API_KEY, FakeLlmServer

pytestmark = pytest.mark.integration

MODEL = "deepseek-reasoner"
REQUEST = ChatRequest(MODEL, (("system", "s"), ("user", "Chunk text:\nHet loon.")), 64)
RETRY = RetrySettings(max_retries=2, backoff_initial=0.01, backoff_max=0.02,
                      invalid_output_retries=2)  # fmt: skip


@pytest.fixture()
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(echo_auth=True) as s:
        yield s


def complete(
    server: FakeLlmServer, tmp_path: Path, *, deadline: float = 5.0, key: str = API_KEY
) -> tuple[Completion | Exception, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    async def go() -> Completion:
        settings = ClientSettings(f"{server.url}/chat/completions", 1.0, 5.0, deadline, RETRY, 4)
        slots = FileSlots(tmp_path / "slots", 4)
        try:
            async with ChatClient(settings, api_key(key, "test"), slots, sleep=sleep) as client:
                return await client.complete(REQUEST)
        finally:
            slots.close()

    try:
        return asyncio.run(go()), slept
    except DocumentError as exc:
        return exc, slept


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition not met"
        time.sleep(0.01)


def statuses(server: FakeLlmServer) -> list[tuple[int, str]]:
    return [(c.status, c.fault) for c in server.calls()]


def test_an_answer(server: FakeLlmServer, tmp_path: Path) -> None:
    result, slept = complete(server, tmp_path)
    assert isinstance(result, Completion)
    assert json.loads(result.content)["section_title"] == ""
    assert result.tokens.reasoning_tokens > 0 and result.tokens.prompt_tokens > 0
    assert statuses(server) == [(200, "")] and slept == []


def test_429_honours_retry_after(server: FakeLlmServer, tmp_path: Path) -> None:
    server.inject("429", retry_after="0.05")
    result, slept = complete(server, tmp_path)
    assert isinstance(result, Completion)
    assert statuses(server) == [(429, "429"), (200, "")]
    assert len(slept) == 1 and 0.05 <= slept[0] <= 0.055


@pytest.mark.parametrize("fault", ["500", "503", "reset", "bad_body"])
def test_transient_failures_are_retried(server: FakeLlmServer, tmp_path: Path, fault: str) -> None:
    server.inject(fault)
    result, slept = complete(server, tmp_path)
    assert isinstance(result, Completion)
    assert [f for _, f in statuses(server)] == [fault, ""]
    assert len(slept) == 1


def test_persistent_503_runs_out_of_retries(server: FakeLlmServer, tmp_path: Path) -> None:
    server.inject("503", times=10)
    result, slept = complete(server, tmp_path)
    assert isinstance(result, DocumentError)
    assert result.error_class is ErrorClass.LLM_UNAVAILABLE and result.retryable
    assert "Server Overloaded" in result.message
    assert server.count() == 3 and len(slept) == 2


@pytest.mark.parametrize("status", ["400", "422"])
def test_request_errors_fail_at_once_with_the_api_message_and_no_key(
    server: FakeLlmServer, tmp_path: Path, status: str
) -> None:
    server.inject(status)
    result, _ = complete(server, tmp_path)
    assert isinstance(result, DocumentError) and not isinstance(result, JobStopError)
    assert result.error_class is ErrorClass.LLM_BAD_REQUEST
    assert f"HTTP {status}" in result.message and "request had Authorization" in result.message
    assert API_KEY not in str(result) and REDACTED in result.message
    assert server.count() == 1


def test_a_wrong_key_stops_the_job(server: FakeLlmServer, tmp_path: Path) -> None:
    result, _ = complete(server, tmp_path, key="sk-wrong")
    assert isinstance(result, JobStopError) and result.error_class is ErrorClass.LLM_AUTH
    assert "Authentication Fails" in result.message and server.count() == 1


def test_no_balance_stops_the_job(server: FakeLlmServer, tmp_path: Path) -> None:
    server.inject("402")
    result, _ = complete(server, tmp_path)
    assert isinstance(result, JobStopError) and result.error_class is ErrorClass.LLM_BALANCE
    assert "Insufficient Balance" in result.message and server.count() == 1


def test_keepalive_lines_cannot_stretch_a_request_past_its_deadline(
    server: FakeLlmServer, tmp_path: Path
) -> None:
    server.inject("stall", times=3, stall=30.0, interval=0.02)
    result, _ = complete(server, tmp_path, deadline=0.3)
    assert isinstance(result, DocumentError)
    assert result.error_class is ErrorClass.LLM_UNAVAILABLE
    assert "request_deadline (0.3 s)" in result.message
    wait_until(lambda: server.count() == 3)  # the server notices the hang-up at its next write
    calls = server.calls()
    assert [c.fault for c in calls] == ["stall"] * 3
    assert not any(c.answered for c in calls)  # the client hung up each time


def test_a_short_stall_inside_the_deadline_is_just_a_slow_answer(
    server: FakeLlmServer, tmp_path: Path
) -> None:
    server.inject("stall", stall=0.1, interval=0.02)
    result, slept = complete(server, tmp_path, deadline=5.0)
    assert isinstance(result, Completion) and slept == []


def ask(server: FakeLlmServer, tmp_path: Path) -> tuple[object, UsageMeter]:
    config = LlmConfig(base_url=server.url, retry=RETRY)
    meter = UsageMeter("USD")

    def parse(content: str) -> dict[str, object]:
        try:
            data = json.loads(content)
        except ValueError:
            raise InvalidAnswer("not JSON") from None
        if not isinstance(data, dict):
            raise InvalidAnswer("not an object")
        return data

    async def go() -> object:
        slots = FileSlots(tmp_path / "slots", 2)
        cache = ResponseCache(tmp_path / "responses.sqlite3")
        settings = ClientSettings.of(config)
        try:
            async with ChatClient(settings, api_key(API_KEY, "t"), slots) as client:
                session = LlmSession(client, cache, meter, config.prices, 2)
                return await session.ask(REQUEST, parse)
        finally:
            cache.close()
            slots.close()

    try:
        return asyncio.run(go()), meter
    except AnswerRejected as exc:
        return exc, meter


@pytest.mark.parametrize("fault", ["blank", "bad_json"])
def test_blank_or_malformed_content_is_asked_again(
    server: FakeLlmServer, tmp_path: Path, fault: str
) -> None:
    server.inject(fault)
    result, meter = ask(server, tmp_path)
    assert isinstance(result, dict) and "section_title" in result
    assert [c.fault for c in server.calls()] == [fault, ""]
    assert meter.total.calls == 2  # the bad answer was paid for too


def test_content_that_stays_bad_is_rejected_with_the_raw_answer(
    server: FakeLlmServer, tmp_path: Path
) -> None:
    server.inject("bad_json", times=3)
    result, _ = ask(server, tmp_path)
    assert isinstance(result, AnswerRejected)
    assert result.attempts == 3 and result.reason == "not JSON"
    assert '"dates": [' in result.raw
