"""Pipeline stage "analyze" with the reasoning model: one validated ChunkAnalysis per chunk.

Batched (the default, `analysis_batch_chunks` > 1): each chunking window's chunks are
analysed by requests that extend the window's chunking request (`prompts.window_batches`,
so the provider's prefix cache serves the window's text); chunks that are not a division
of a window's segments go in batches of their own text (`prompts.make_batches`). Each
answer is checked chunk by chunk. A chunk whose entry is missing or invalid is asked again
alone, and when every answer to a batch is rejected each of its chunks is asked alone: one
bad entry never costs the batch. Per chunk (`analysis_batch_chunks = 1`): one call per
chunk.

All calls of the document run concurrently (at most `document_concurrency`, and the
job-wide `max_concurrency`). A chunk's own answer must pass `schema.parse_analysis`, exactly
like the embedded analyzer's output; when every answer for a chunk asked alone is rejected
the document fails (llm_invalid_output) with the reason and the start of the raw answer.
The model's `reasoning_content` is never kept: only its token count reaches the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from functools import partial

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.llm.client import ChatRequest
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.session import AnswerRejected, LlmSession
from lexi_maint.llm.usage import Usage, UsageMeter
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.pipeline.prompts import (
    BatchAnswer,
    WindowBatch,
    analysis_request,
    batch_analysis_request,
    make_batches,
    parse_analysis_answer,
    parse_batch_answer,
    window_batches,
)
from lexi_maint.pipeline.schema import ChunkAnalysis

log = logging.getLogger(__name__)


class LlmAnalyzeStage:
    name = "analyze"

    def __init__(self, runtime: LlmRuntime, settings: ChunkSettings) -> None:
        self.runtime = runtime
        self.settings = settings  # the chunk stage's: its windows and segments are rebuilt
        self._meter = UsageMeter(runtime.config.prices.currency)
        self._trimmed: list[ChunkAnalysis] = []  # analyses the bounds cut (the first one kept)
        self._trimmed_count = 0

    def usage(self) -> Usage:
        return self._meter.total

    def run(self, work: Work) -> Work:
        if not work.chunks:
            return replace(work, analyses=())
        analyses = self.analyze(work, work.chunks)
        log.debug("analyzed %s with the model: %d chunks", work.source.path, len(analyses))
        work = replace(work, analyses=analyses)
        for note in self.notes():
            work = work.with_warning(note)
        return work

    def analyze(self, work: Work, chunks: Sequence[Chunk]) -> tuple[ChunkAnalysis, ...]:
        """The analyses of some of a document's chunks (a window of a long one, or all)."""
        if not chunks:
            return ()
        title = work.require_parsed().title
        analyses = asyncio.run(self._analyze(str(work.source.path), title, tuple(chunks)))
        trimmed = [a for a in analyses if a.notes]
        self._trimmed_count += len(trimmed)
        self._trimmed = self._trimmed or trimmed[:1]
        return tuple(analyses)

    def notes(self) -> tuple[str, ...]:
        """One warning for the document, however much the bounds cut."""
        if not self._trimmed:
            return ()
        first = self._trimmed[0]
        return (
            f"the model's analysis went past the bounds in {self._trimmed_count} chunks and was"
            f" trimmed (chunk {first.chunk_id}: {'; '.join(first.notes[:3])})",
        )

    async def _analyze(
        self, document: str, title: str, chunks: tuple[Chunk, ...]
    ) -> list[ChunkAnalysis]:
        config = self.runtime.config
        batches: list[WindowBatch] = []
        rest = list(chunks)
        if config.analysis_batch_chunks > 1:
            batches, rest = window_batches(config, self.settings, title, chunks)
        inline = make_batches(rest, config.analysis_batch_chunks, config.analysis_batch_tokens)
        async with self.runtime.session(self._meter, document) as session:
            jobs = [partial(self._batch, session, title, b.request, b.numbered) for b in batches]
            for batch in inline:
                if len(batch) == 1:
                    jobs.append(partial(self._alone, session, title, batch))
                    continue
                request = batch_analysis_request(config, title, batch)
                numbered = tuple((chunk.index, chunk) for chunk in batch)
                jobs.append(partial(self._batch, session, title, request, numbered))
            results = await gather_all(jobs, config.document_concurrency)
        found = {analysis.chunk_id: analysis for batch in results for analysis in batch}
        return [found[chunk.id] for chunk in chunks]

    async def _alone(
        self, session: LlmSession, title: str, batch: Sequence[Chunk]
    ) -> list[ChunkAnalysis]:
        return [await self._one(session, title, chunk) for chunk in batch]

    async def _batch(
        self,
        session: LlmSession,
        title: str,
        request: ChatRequest,
        numbered: tuple[tuple[int, Chunk], ...],
    ) -> list[ChunkAnalysis]:
        try:
            answer = await session.ask(
                request, lambda content: parse_batch_answer(content, numbered)
            )
        except AnswerRejected as exc:
            answer = BatchAnswer({}, {chunk.id: str(exc) for _, chunk in numbered})
        alone = [chunk for _, chunk in numbered if chunk.id not in answer.analyses]
        for chunk in alone:
            log.info("chunk %d asked alone: %s", chunk.index, answer.problems[chunk.id])
        jobs = [partial(self._one, session, title, chunk) for chunk in alone]
        redone = await gather_all(jobs, max(1, len(jobs)))
        return [*answer.analyses.values(), *redone]

    async def _one(self, session: LlmSession, title: str, chunk: Chunk) -> ChunkAnalysis:
        request = analysis_request(self.runtime.config, title, chunk)
        try:
            return await session.ask(
                request, lambda content: parse_analysis_answer(chunk.id, content)
            )
        except AnswerRejected as exc:
            raise DocumentError(
                ErrorClass.LLM_INVALID_OUTPUT,
                f"analysis of chunk {chunk.index} ({chunk.id}): {exc}",
            ) from None
