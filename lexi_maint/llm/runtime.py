"""Everything a worker needs to call the model, built once in the runner process.

`LlmRuntime` holds the validated `[llm]` config, the API key (read before any worker
starts, so a missing key stops the job at once), the TLS context (the CA bundle is
loaded once, not twice per document) and the job's name (spend is journalled per job and
document). Workers inherit it by fork; inside a stage, `async with
runtime.session(meter, document)` opens what belongs to one event loop: the job-wide call
slots, the single-flight key locks, the response cache and the HTTP client.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from lexi_maint.config.llm import LlmConfig
from lexi_maint.errors import DocumentError, JobStopError
from lexi_maint.llm.cache import ResponseCache, SpendTag
from lexi_maint.llm.client import ChatClient, ClientSettings
from lexi_maint.llm.flight import KeyLocks
from lexi_maint.llm.session import LlmSession
from lexi_maint.llm.slots import FileSlots
from lexi_maint.llm.usage import UsageMeter
from lexi_maint.secretfile import Secret

T = TypeVar("T")


@dataclass(frozen=True)
class LlmRuntime:
    config: LlmConfig
    key: Secret
    transport: httpx.AsyncBaseTransport | None = None  # tests: httpx.MockTransport
    ssl_context: ssl.SSLContext = field(default_factory=httpx.create_ssl_context)
    job: str = ""

    @asynccontextmanager
    async def session(self, meter: UsageMeter, document: str) -> AsyncIterator[LlmSession]:
        """`document`: the path the ledger knows the document by (its spend is tagged so)."""
        config = self.config
        slots = FileSlots(config.slots_dir, config.max_concurrency)
        cache = ResponseCache(config.cache_path)
        flights = KeyLocks(config.inflight_dir)
        try:
            settings = ClientSettings.of(config)
            async with ChatClient(
                settings, self.key, slots, transport=self.transport, ssl_context=self.ssl_context
            ) as client:
                yield LlmSession(
                    client,
                    cache,
                    meter,
                    config.prices,
                    config.retry.invalid_output_retries,
                    flights=flights,
                    tag=SpendTag(self.job, document),
                )
        finally:
            flights.close()
            cache.close()
            slots.close()


async def gather_all(jobs: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run every job, at most `limit` at a time, results in order. On the first failure
    cancel the rest and raise the most telling error (JobStopError, DocumentError, other)."""
    semaphore = asyncio.Semaphore(limit)

    async def bounded(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(bounded(job)) for job in jobs]
    except ExceptionGroup as group_error:
        raise _most_telling(group_error) from None
    return [task.result() for task in tasks]


def _most_telling(group: ExceptionGroup[Exception]) -> Exception:
    leaves = list(_leaves(group))
    for kind in (JobStopError, DocumentError):
        for error in leaves:
            if isinstance(error, kind):
                return error
    return leaves[0]


def _leaves(error: Exception) -> Sequence[Exception]:
    if isinstance(error, ExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]
