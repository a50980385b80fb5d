"""Single-flight and the spend journal: identical requests share one call, in one process
and across processes; every answered call's spend is journalled as it arrives."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lexi_maint.config.llm import ModelPrice, Prices
from lexi_maint.llm.cache import ResponseCache, SpendTag
from lexi_maint.llm.client import ChatRequest, Completion
from lexi_maint.llm.flight import KeyLocks
from lexi_maint.llm.session import InvalidAnswer, LlmSession
from lexi_maint.llm.usage import Tokens, UsageMeter

REQUEST = ChatRequest("m", (("user", "hello"),), max_tokens=10)
PRICES = Prices(models={"m": ModelPrice(0.0, 1.0, 2.0)})
TOKENS = Tokens(prompt_tokens=1000, completion_tokens=500)
COST = (1000 * 1.0 + 500 * 2.0) / 1e6


class SlowClient:
    def __init__(self, *contents: str, delay: float = 0.1) -> None:
        self.contents = list(contents)
        self.delay = delay
        self.calls = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return Completion(self.contents.pop(0), "stop", TOKENS)


def parse_number(content: str) -> int:
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("n"), int):
        raise InvalidAnswer(f"no number in {content!r}")
    return int(data["n"])


def session(client: SlowClient, state: Path, meter: UsageMeter, document: str) -> LlmSession:
    return LlmSession(
        client, ResponseCache(state / "responses.sqlite3"), meter, PRICES, 1,
        clock=lambda: datetime(2026, 1, 1, 12, tzinfo=UTC),
        flights=KeyLocks(state / "inflight"), tag=SpendTag("j", document),
    )  # fmt: skip


def journal(state: Path) -> list[tuple[str, int, int, float, float]]:
    with sqlite3.connect(state / "responses.sqlite3") as db:
        return db.execute(
            "SELECT document, calls, cached_answers, cost, reused_cost FROM spend ORDER BY id"
        ).fetchall()


def test_identical_requests_in_one_process_share_one_call(tmp_path: Path) -> None:
    client = SlowClient('{"n": 1}')
    a_meter, b_meter = UsageMeter("USD"), UsageMeter("USD")

    async def both() -> list[int]:
        a = session(client, tmp_path, a_meter, "/in/a.txt")
        b = session(client, tmp_path, b_meter, "/in/b.txt")
        return list(await asyncio.gather(a.ask(REQUEST, parse_number),
                                         b.ask(REQUEST, parse_number)))  # fmt: skip

    assert asyncio.run(both()) == [1, 1] and client.calls == 1
    assert (a_meter.total.calls, b_meter.total.cached_answers) == (1, 1)
    assert journal(tmp_path) == [
        ("/in/a.txt", 1, 0, pytest.approx(COST), 0.0),
        ("/in/b.txt", 0, 1, 0.0, pytest.approx(COST)),  # reused: what it cost when bought
    ]
    assert not list((tmp_path / "inflight").iterdir())  # lock files are removed


def test_a_waiter_calls_itself_when_the_holder_got_no_valid_answer(tmp_path: Path) -> None:
    client = SlowClient("bad", "bad", '{"n": 2}')

    async def both() -> list[object]:
        a = session(client, tmp_path, UsageMeter("USD"), "/in/a.txt")
        b = session(client, tmp_path, UsageMeter("USD"), "/in/b.txt")
        return list(await asyncio.gather(a.ask(REQUEST, parse_number),
                                         b.ask(REQUEST, parse_number),
                                         return_exceptions=True))  # fmt: skip

    first, second = asyncio.run(both())
    assert isinstance(first, Exception) and second == 2 and client.calls == 3
    # every answered call is journalled, the rejected ones included
    assert [row[:3] for row in journal(tmp_path)] == [
        ("/in/a.txt", 1, 0), ("/in/a.txt", 1, 0), ("/in/b.txt", 1, 0)]  # fmt: skip


def _hold_in_child(state: Path, started: multiprocessing.synchronize.Event) -> None:
    async def hold() -> None:
        async with KeyLocks(state).hold("k"):
            started.set()
            await asyncio.sleep(0.5)
            (state / "child-done").write_text(str(time.monotonic()))

    asyncio.run(hold())


def test_a_key_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=_hold_in_child, args=(tmp_path, started))
    child.start()
    assert started.wait(10)
    locks = KeyLocks(tmp_path)

    async def take() -> float:
        async with locks.hold("k"):
            return time.monotonic()

    taken = asyncio.run(take())
    child.join(10)
    assert float((tmp_path / "child-done").read_text()) <= taken
    assert locks.waits >= 1
    locks.close()


def _die_holding(state: Path, started: multiprocessing.synchronize.Event) -> None:
    async def hold() -> None:
        async with KeyLocks(state).hold("k"):
            started.set()
            await asyncio.sleep(60)

    asyncio.run(hold())


def test_a_holder_that_is_killed_lets_the_waiter_go(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=_die_holding, args=(tmp_path, started))
    child.start()
    assert started.wait(10)
    locks = KeyLocks(tmp_path)

    async def take() -> bool:
        waiter = asyncio.ensure_future(_enter(locks))
        await asyncio.sleep(0.2)
        assert not waiter.done()
        child.kill()  # SIGKILL: the kernel drops its flock
        return await asyncio.wait_for(waiter, 10)

    assert asyncio.run(take())
    child.join(10)
    locks.close()


async def _enter(locks: KeyLocks) -> bool:
    async with locks.hold("k"):
        return True
