"""Pipeline stage "chunk" with the LLM: semantic chunks proposed by the chunk model.

The document is cut into windows (see `lexi_maint.pipeline.prompts`), all windows are asked
concurrently (at most `document_concurrency` calls of this document, and the job-wide
`max_concurrency`), and each answer is validated. A window whose answers are all rejected
gets the structural splitter's chunks instead, and the document gets a warning in the
ledger saying which part and why. Chunk ids, offsets and the tiling guarantee are the
same as those of `ChunkStage`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from functools import partial

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.session import AnswerRejected, LlmSession
from lexi_maint.llm.usage import Usage, UsageMeter
from lexi_maint.pipeline.chunk import Span, document_key
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, Work
from lexi_maint.pipeline.prompts import (
    Window,
    chunk_request,
    make_segments,
    make_windows,
    parse_chunking,
    segment_limit,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowResult:
    spans: tuple[Span, ...]
    warning: str | None = None


class LlmChunkStage:
    name = "chunk"

    def __init__(self, settings: ChunkSettings, runtime: LlmRuntime) -> None:
        self.settings = settings
        self.runtime = runtime
        self._meter = UsageMeter(runtime.config.prices.currency)

    def usage(self) -> Usage:
        return self._meter.total

    def run(self, work: Work) -> Work:
        parsed = work.require_parsed()
        if not parsed.text:
            return replace(work, chunks=()).with_warning("no text to chunk")
        windows = make_windows(parsed.text, self.settings, self.runtime.config.window_chars)
        results = asyncio.run(self._chunk(str(work.source.path), parsed, windows))
        key = document_key(work)
        spans = [span for result in results for span in result.spans]
        chunks = tuple(
            Chunk(f"{key}:{i:05d}", i, s.start, s.end, s.heading, parsed.text[s.start : s.end])
            for i, s in enumerate(spans)
        )
        log.debug("chunked %s with the model: %d windows, %d chunks",
                  work.source.path, len(windows), len(chunks))  # fmt: skip
        for result in results:
            if result.warning:
                work = work.with_warning(result.warning)
        return replace(work, chunks=chunks)

    async def _chunk(
        self, document: str, parsed: ParsedDocument, windows: list[Window]
    ) -> list[WindowResult]:
        async with self.runtime.session(self._meter, document) as session:
            jobs = [partial(self._window, session, parsed, w, len(windows)) for w in windows]
            return await gather_all(jobs, self.runtime.config.document_concurrency)

    async def _window(
        self, session: LlmSession, parsed: ParsedDocument, window: Window, total: int
    ) -> WindowResult:
        text = parsed.text
        segments = make_segments(text, window.start, window.end, segment_limit(self.settings))
        request = chunk_request(
            self.runtime.config, parsed.title, text, window, total, segments, self.settings
        )
        try:
            spans = await session.ask(
                request, lambda content: parse_chunking(content, window, segments, self.settings)
            )
        except AnswerRejected as exc:
            warning = (
                f"chunk: the model's chunking of part {window.index + 1}/{total} "
                f"(characters {window.start}-{window.end}) was rejected: {exc}; "
                "used the structural splitter there"
            )
            log.warning("%s", warning)
            return WindowResult(window.fallback, warning)
        return WindowResult(tuple(spans))
