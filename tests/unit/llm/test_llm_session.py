from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lexi_maint.config.llm import ModelPrice, Prices
from lexi_maint.llm.cache import ResponseCache
from lexi_maint.llm.client import ChatRequest, Completion
from lexi_maint.llm.session import AnswerRejected, InvalidAnswer, LlmSession
from lexi_maint.llm.usage import Tokens, UsageMeter

REQUEST = ChatRequest("m", (("user", "hello"),), max_tokens=10)
PRICES = Prices(models={"m": ModelPrice(0.0, 1.0, 2.0)})
TOKENS = Tokens(prompt_tokens=1000, completion_tokens=500, reasoning_tokens=300)


class FakeClient:
    def __init__(self, *contents: str) -> None:
        self.contents = list(contents)
        self.calls = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        return Completion(self.contents.pop(0), "stop", TOKENS)


def parse_number(content: str) -> int:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise InvalidAnswer(f"no number in {content!r}")
    return int(data["n"])


def ask(client: FakeClient, cache: ResponseCache, retries: int = 2) -> tuple[int, UsageMeter]:
    meter = UsageMeter("USD")
    session = LlmSession(client, cache, meter, PRICES, retries,
                         clock=lambda: datetime(2026, 1, 1, 12, tzinfo=UTC))  # fmt: skip
    return asyncio.run(session.ask(REQUEST, parse_number)), meter


@pytest.fixture()
def cache(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "llm" / "responses.sqlite3")


def test_a_valid_answer_is_metered_priced_and_cached(cache: ResponseCache) -> None:
    client = FakeClient('{"n": 7}')
    value, meter = ask(client, cache)
    assert value == 7 and client.calls == 1
    usage = meter.total
    assert (usage.calls, usage.cached_answers, usage.prompt_tokens) == (1, 0, 1000)
    assert usage.cost == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert cache.keys() == {REQUEST.key}

    again = FakeClient()  # would fail if called
    value, meter = ask(again, cache)
    assert value == 7 and again.calls == 0
    assert (meter.total.calls, meter.total.cached_answers, meter.total.cost) == (0, 1, 0.0)


def test_blank_and_invalid_answers_are_asked_again_and_still_paid_for(
    cache: ResponseCache,
) -> None:
    client = FakeClient("   \n", "{oops", '{"n": 3}')
    value, meter = ask(client, cache)
    assert value == 3 and client.calls == 3
    assert meter.total.calls == 3 and meter.total.prompt_tokens == 3000


def test_when_every_answer_is_rejected_the_last_reason_and_raw_text_come_back(
    cache: ResponseCache,
) -> None:
    client = FakeClient("", "", "not json at all")
    with pytest.raises(AnswerRejected) as info:
        ask(client, cache, retries=2)
    error = info.value
    assert error.attempts == 3 and client.calls == 3
    assert error.reason == "no number in 'not json at all'"
    assert "raw answer: 'not json at all'" in str(error)
    assert cache.keys() == set()  # nothing invalid is cached


def test_blank_content_names_the_finish_reason(cache: ResponseCache) -> None:
    with pytest.raises(AnswerRejected, match=r"blank content \(finish_reason 'stop'\)"):
        ask(FakeClient(""), cache, retries=0)


def test_a_cached_answer_that_no_longer_validates_is_dropped(cache: ResponseCache) -> None:
    cache.put(REQUEST.key, "m", Completion('{"old": true}', "stop", TOKENS))
    client = FakeClient('{"n": 1}')
    value, meter = ask(client, cache)
    assert value == 1 and client.calls == 1 and meter.total.cached_answers == 0


def test_the_cache_survives_reopening_and_stores_no_reasoning(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    first = ResponseCache(path)
    first.put("k", "m", Completion("content", "stop", Tokens(1, 2, 3, 4)))
    first.close()
    second = ResponseCache(path)
    assert second.get("k") == Completion("content", "stop", Tokens(1, 2, 3, 4))
    assert second.get("other") is None
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(answers)")]
    assert not any("reasoning_content" in c for c in columns)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unusable_cache_is_bypassed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = ResponseCache(blocker / "responses.sqlite3")
    assert "unusable" in caplog.text
    client = FakeClient('{"n": 5}', '{"n": 5}')
    assert ask(client, cache)[0] == 5 and ask(client, cache)[0] == 5
    assert client.calls == 2
