"""`make bench-llm-calls`: the CPU one model call costs a worker, layer by layer.

One process sends N distinct per-chunk analysis requests, 64 at a time, to the project's
OpenAI-compatible test server (tests/llm_server, its own process, so its CPU is not
counted), in two ways:

    httpx     the HTTP client alone, as lexi-maint drives it (`LaneTransport`, one
              `AsyncClient.stream` per request, the body read and JSON-decoded): what any
              call costs with the design-card HTTP client, before lexi-maint does anything
    session   lexi-maint's whole call path (`LlmSession.ask`): response-cache lookup,
              single-flight key lock, job-wide call slot, the client above, the spend
              journal and the cached answer written in one SQLite transaction, the answer
              validated by the analysis parser

each with no simulated latency (calls answered at once) and with `make bench-llm`'s latency
model at its scale (64 calls in flight for most of the run). CPU is this process's user +
system time (getrusage) divided by the calls, printed with its user and system parts and the
event loop's iterations per call (its calls of `select`, blocking or not): with no latency
one iteration serves many answers; with latency nearly every answer goes through its own
(the socket turning readable, then anyio's checkpoints), each a syscall and the same Python
code run on cold caches. Prints the figures and the ratio of the session to the bare
client measured in the same run. This is what the "CPU per answered call <= 2 ms" target of
`make bench-llm` (a) meets first: the client's share of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.llm import LATENCY, test_server
from lexi_maint.config.llm import LlmConfig
from lexi_maint.llm.cache import ResponseCache
from lexi_maint.llm.client import ChatRequest, LaneTransport
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.usage import UsageMeter
from lexi_maint.pipeline.contract import Chunk
from lexi_maint.pipeline.prompts import analysis_request, parse_analysis_answer
from lexi_maint.pipeline.schema import ChunkAnalysis
from lexi_maint.secretfile import Secret
from tests.llm_server import API_KEY
from tests.pdfgen import cao_page_text

IN_FLIGHT = 64


def chunks(count: int, tag: str) -> list[Chunk]:
    """Distinct chunks of CAO text (about 1,500 characters each, like the batch's)."""
    texts = (f"{cao_page_text(i % 50 + 1)[:1500]} {tag} {i}" for i in range(count))
    return [Chunk(f"bench:{i:05d}", i, 0, 1500, "Artikel", t) for i, t in enumerate(texts)]


class CountingSelector(selectors.DefaultSelector):
    """The event loop's selector, counting the loop's iterations (its calls of `select`)."""

    iterations = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(timeout)
        self.iterations += 1
        return ready


@dataclass(frozen=True)
class Spent:
    user: float  # seconds
    system: float
    iterations: int
    wall: float

    @property
    def cpu(self) -> float:
        return self.user + self.system


def spent_on(work: Callable[[], Coroutine[Any, Any, None]]) -> Spent:
    selector = CountingSelector()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
        runner.run(work())
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Spent(after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
                 selector.iterations, time.monotonic() - started)  # fmt: skip


async def bare_client(config: LlmConfig, requests: list[ChatRequest]) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    transport = LaneTransport(config.endpoint, IN_FLIGHT, None)
    async with httpx.AsyncClient(transport=transport, headers=headers, timeout=60.0) as client:

        async def one(request: ChatRequest) -> object:
            async with client.stream("POST", config.endpoint, content=request.body()) as answer:
                body = b"".join([part async for part in answer.aiter_bytes()])
            answer.raise_for_status()
            return json.loads(body)

        await gather_all([partial(one, r) for r in requests], IN_FLIGHT)


async def whole_session(runtime: LlmRuntime, batch: list[Chunk]) -> None:
    config = runtime.config
    async with runtime.session(UsageMeter(config.prices.currency), "bench") as session:

        async def one(chunk: Chunk) -> ChunkAnalysis:
            request = analysis_request(config, "CAO bench", chunk)
            return await session.ask(request, partial(parse_analysis_answer, chunk.id))

        await gather_all([partial(one, c) for c in batch], IN_FLIGHT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=0.05, help="latency scale (bench-llm's)")
    args = parser.parse_args()
    print(f"{args.calls} calls per case, {IN_FLIGHT} in flight, one process; latency {LATENCY};"
          f" load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    for scale in (0.0, args.scale):
        with (
            tempfile.TemporaryDirectory(prefix="lexi-bench-calls-") as tmp,
            test_server(scale) as server,
        ):
            config = LlmConfig(provider="deepseek", base_url=server.url, state_dir=Path(tmp))
            ResponseCache.prepare(config.cache_path)
            runtime = LlmRuntime(config, Secret(API_KEY, "bench", kind="api key"), job="bench")
            requests = [analysis_request(config, "CAO bench", c) for c in chunks(args.calls, "h")]
            bare = spent_on(partial(bare_client, config, requests))
            server.admin("reset")
            full = spent_on(partial(whole_session, runtime, chunks(args.calls, "s")))
        label = "no latency" if scale == 0 else f"latency scale {scale:g}"
        n = args.calls
        for name, spent in (("httpx", bare), ("session", full)):
            print(f"{label:<20} {name:<8} CPU {spent.cpu:6.2f} s = {1000 * spent.cpu / n:5.2f} ms"
                  f" per call (user {1000 * spent.user / n:4.2f}, system"
                  f" {1000 * spent.system / n:4.2f}); {spent.iterations / n:4.1f} loop"
                  f" iterations per call  (wall {spent.wall:5.1f} s)")  # fmt: skip
        print(f"{label:<20} session / httpx {full.cpu / bare.cpu:.2f}; lexi-maint's own part"
              f" {1000 * (full.cpu - bare.cpu) / n:.2f} ms per call")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min; 2 CPUs shared)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
