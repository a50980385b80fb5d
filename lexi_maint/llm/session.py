"""Asking the model for an answer that passes validation, paying for it only once.

`LlmSession.ask(request, parse)`:
    1. an answer in the response cache that `parse` accepts is returned (no call, no cost);
    2. otherwise the client is asked (it handles HTTP errors and retries); the usage of
       every answered call is metered and priced, valid or not;
    3. blank content or content that `parse` rejects (it raises `InvalidAnswer`) is asked
       again, `invalid_output_retries` times; then `AnswerRejected` carries the last
       reason and the start of the raw answer. The caller decides what that means (the
       chunker falls back to the structural splitter, the analyzer fails the document).
    4. a valid answer is stored in the cache before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from lexi_maint.llm.cache import ResponseCache
from lexi_maint.llm.client import ChatRequest, Completion
from lexi_maint.llm.config import Prices
from lexi_maint.llm.cost import priced_usage
from lexi_maint.llm.usage import UsageMeter

T = TypeVar("T")
RAW_EXCERPT = 200


class InvalidAnswer(Exception):
    """Raised by a parse function: the content does not say what was asked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AnswerRejected(Exception):
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
    ) -> None:
        self._client = client
        self._cache = cache
        self._meter = meter
        self._prices = prices
        self._retries = invalid_output_retries
        self._clock = clock

    async def ask(self, request: ChatRequest, parse: Callable[[str], T]) -> T:
        key = request.key
        cached = self._cache.get(key)
        if cached is not None:
            try:
                value = parse(cached.content)
            except InvalidAnswer:
                self._cache.drop(key)  # stored under other validation rules
            else:
                self._meter.add_cached_answer()
                return value
        reason, raw = "", ""
        for _ in range(self._retries + 1):
            answer = await self._client.complete(request)
            self._meter.add(priced_usage(self._prices, request.model, answer.tokens, self._clock()))
            raw = answer.content
            try:
                value = _parse(answer, parse)
            except InvalidAnswer as exc:
                reason = exc.reason
                continue
            self._cache.put(key, request.model, answer)
            return value
        raise AnswerRejected(self._retries + 1, reason, raw)


def _parse(answer: Completion, parse: Callable[[str], T]) -> T:
    if not answer.content.strip():
        raise InvalidAnswer(f"blank content (finish_reason {answer.finish_reason or 'none'!r})")
    return parse(answer.content)
