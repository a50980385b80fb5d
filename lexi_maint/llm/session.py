"""Asking the model for an answer that passes validation, paying for it only once.

`LlmSession.ask(request, parse)`:
    1. an answer in the response cache that `parse` accepts is returned (no call, no cost);
    2. otherwise the request's key is held (`flight.KeyLocks`: one identical request in
       flight at a time, across the job's workers) and the cache is read again: an
       identical request that was in flight meanwhile has paid for the answer;
    3. otherwise the client is asked (it handles HTTP errors and retries); the usage of
       every answered call is metered and priced, valid or not, and written to the spend
       journal the moment it arrives (`cache.ResponseCache.record`), together with the
       answer when it is valid;
    4. blank content or content that `parse` rejects (it raises `InvalidAnswer`) is asked
       again, `invalid_output_retries` times; then `AnswerRejected` carries the last
       reason and the start of the raw answer. The caller decides what that means (the
       chunker falls back to the structural splitter, the analyzer asks chunk by chunk or
       fails the document).
An answer reused from the cache is journalled too (no cost; what it cost when bought is
kept as `reused_cost`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from lexi_maint.config.llm import Prices
from lexi_maint.errors import LlmError
from lexi_maint.llm.cache import ResponseCache, SpendTag
from lexi_maint.llm.client import ChatRequest, Completion
from lexi_maint.llm.cost import call_cost, priced_usage
from lexi_maint.llm.flight import KeyLocks
from lexi_maint.llm.usage import Usage, UsageMeter

T = TypeVar("T")
RAW_EXCERPT = 200


class InvalidAnswer(LlmError):
    """Raised by a parse function: the content does not say what was asked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AnswerRejected(LlmError):
    """Every answer to one request was blank or invalid."""

    def __init__(self, attempts: int, reason: str, raw: str) -> None:
        excerpt = raw if len(raw) <= RAW_EXCERPT else raw[:RAW_EXCERPT] + "…"
        super().__init__(f"{attempts} answers rejected; last: {reason}; raw answer: {excerpt!r}")
        self.attempts = attempts
        self.reason = reason
        self.raw = excerpt


class Completer(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...


class LlmSession:
    def __init__(
        self,
        client: Completer,
        cache: ResponseCache,
        meter: UsageMeter,
        prices: Prices,
        invalid_output_retries: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        flights: KeyLocks | None = None,
        tag: SpendTag | None = None,
    ) -> None:
        self._client = client
        self._cache = cache
        self._meter = meter
        self._prices = prices
        self._retries = invalid_output_retries
        self._clock = clock
        self._flights = flights
        self._tag = tag

    async def ask(self, request: ChatRequest, parse: Callable[[str], T]) -> T:
        reused = self._reuse(request, parse)
        if reused is not None:
            return reused[0]
        if self._flights is None:
            return await self._call(request, parse)
        async with self._flights.hold(request.key):
            reused = self._reuse(request, parse)  # an identical request may just have paid
            if reused is not None:
                return reused[0]
            return await self._call(request, parse)

    def _reuse(self, request: ChatRequest, parse: Callable[[str], T]) -> tuple[T] | None:
        cached = self._cache.get(request.key)
        if cached is None:
            return None
        try:
            value = parse(cached.content)
        except InvalidAnswer:
            self._cache.drop(request.key)  # stored under other validation rules
            return None
        bought = call_cost(self._prices, request.model, cached.tokens, self._clock())
        usage = Usage.of_reuse(bought, self._prices.currency)
        self._meter.add(usage)
        self._cache.record(self._tag, usage, None)
        return (value,)

    async def _call(self, request: ChatRequest, parse: Callable[[str], T]) -> T:
        reason, raw = "", ""
        for _ in range(self._retries + 1):
            answer = await self._client.complete(request)
            usage = priced_usage(self._prices, request.model, answer.tokens, self._clock())
            self._meter.add(usage)
            raw = answer.content
            try:
                value = _parse(answer, parse)
            except InvalidAnswer as exc:
                self._cache.record(self._tag, usage, None)
                reason = exc.reason
                continue
            except BaseException:
                self._cache.record(self._tag, usage, None)  # paid for all the same
                raise
            self._cache.record(self._tag, usage, (request.key, request.model, answer))
            return value
        raise AnswerRejected(self._retries + 1, reason, raw)


def _parse(answer: Completion, parse: Callable[[str], T]) -> T:
    if not answer.content.strip():
        raise InvalidAnswer(f"blank content (finish_reason {answer.finish_reason or 'none'!r})")
    return parse(answer.content)
