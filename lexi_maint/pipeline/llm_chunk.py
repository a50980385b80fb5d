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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.session import AnswerRejected, LlmSession
from lexi_maint.llm.usage import Usage, UsageMeter
from lexi_maint.pipeline.chunk import WINDOW_CHARS, Span, document_key, text_windows
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, Work
from lexi_maint.pipeline.prompts import WindowRequest, parse_chunking, window_requests

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
        self._notes: list[str] = []

    def usage(self) -> Usage:
        return self._meter.total

    def run(self, work: Work) -> Work:
        parsed = work.require_parsed()
        if not parsed.text:
            return replace(work, chunks=()).with_warning("no text to chunk")
        windows = window_requests(self.runtime.config, self.settings, parsed.title, parsed.text)
        results = asyncio.run(self._chunk(str(work.source.path), windows))
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

    def windows(
        self, work: Work, pieces: Iterable[str], title: Callable[[], str]
    ) -> Iterator[tuple[Chunk, ...]]:
        """The chunks of a long text given in pieces: each window of `WINDOW_CHARS`
        (`text_windows`) chunked by the model as `run` chunks a whole text (its parts, and
        the characters a warning names, counted within the window)."""
        key = document_key(work)
        index = 0
        for offset, text in text_windows(pieces, WINDOW_CHARS):
            parsed = ParsedDocument(title(), 0, text, "")
            windows = window_requests(self.runtime.config, self.settings, parsed.title, text)
            results = asyncio.run(self._chunk(str(work.source.path), windows))
            self._notes += [result.warning for result in results if result.warning]
            spans = [span for result in results for span in result.spans]
            yield tuple(
                Chunk(f"{key}:{i:05d}", i, offset + s.start, offset + s.end, s.heading,
                      text[s.start : s.end])
                for i, s in enumerate(spans, index)
            )  # fmt: skip
            index += len(spans)

    def notes(self) -> tuple[str, ...]:
        """Warnings about the windows chunked so far (`windows`)."""
        return tuple(self._notes)

    async def _chunk(self, document: str, windows: Sequence[WindowRequest]) -> list[WindowResult]:
        async with self.runtime.session(self._meter, document) as session:
            jobs = [partial(self._window, session, w, len(windows)) for w in windows]
            return await gather_all(jobs, self.runtime.config.document_concurrency)

    async def _window(self, session: LlmSession, asked: WindowRequest, total: int) -> WindowResult:
        window = asked.window
        try:
            spans = await session.ask(
                asked.request,
                lambda content: parse_chunking(content, window, asked.segments, self.settings),
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
