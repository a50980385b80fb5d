"""Pipeline stage "analyze" with the reasoning model: one validated ChunkAnalysis per chunk.

Batched (the default, `analysis_batch_chunks` > 1): the document's chunks are packed into
batches (`prompts.make_batches`) and each batch is one call; the answer is checked chunk by
chunk. A chunk whose entry is missing or invalid is asked again alone, and when every
answer to a batch is rejected each of its chunks is asked alone: one bad entry never costs
the batch. Per chunk (`analysis_batch_chunks = 1`): one call per chunk.

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

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.session import AnswerRejected, LlmSession
from lexi_maint.llm.usage import Usage, UsageMeter
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.pipeline.prompts import (
    BatchAnswer,
    analysis_request,
    batch_analysis_request,
    make_batches,
    parse_analysis_answer,
    parse_batch_answer,
)
from lexi_maint.pipeline.schema import ChunkAnalysis

log = logging.getLogger(__name__)


class LlmAnalyzeStage:
    name = "analyze"

    def __init__(self, runtime: LlmRuntime) -> None:
        self.runtime = runtime
        self._meter = UsageMeter(runtime.config.prices.currency)

    def usage(self) -> Usage:
        return self._meter.total

    def run(self, work: Work) -> Work:
        if not work.chunks:
            return replace(work, analyses=())
        title = work.require_parsed().title
        analyses = asyncio.run(self._analyze(str(work.source.path), title, work.chunks))
        log.debug("analyzed %s with the model: %d chunks", work.source.path, len(analyses))
        work = replace(work, analyses=tuple(analyses))
        trimmed = [a for a in analyses if a.notes]
        if trimmed:  # one warning per document, however much was cut
            first = trimmed[0]
            work = work.with_warning(
                f"the model's analysis went past the bounds in {len(trimmed)} chunks and was"
                f" trimmed (chunk {first.chunk_id}: {'; '.join(first.notes[:3])})"
            )
        return work

    async def _analyze(
        self, document: str, title: str, chunks: tuple[Chunk, ...]
    ) -> list[ChunkAnalysis]:
        config = self.runtime.config
        batches = make_batches(chunks, config.analysis_batch_chunks, config.analysis_batch_tokens)
        async with self.runtime.session(self._meter, document) as session:
            jobs = [partial(self._batch, session, title, batch) for batch in batches]
            results = await gather_all(jobs, config.document_concurrency)
        return [analysis for batch in results for analysis in batch]

    async def _batch(
        self, session: LlmSession, title: str, batch: Sequence[Chunk]
    ) -> list[ChunkAnalysis]:
        if len(batch) == 1:
            return [await self._one(session, title, batch[0])]
        request = batch_analysis_request(self.runtime.config, title, batch)
        try:
            answer = await session.ask(request, lambda content: parse_batch_answer(content, batch))
        except AnswerRejected as exc:
            answer = BatchAnswer({}, {chunk.id: str(exc) for chunk in batch})
        alone = [chunk for chunk in batch if chunk.id not in answer.analyses]
        for chunk in alone:
            log.info("chunk %d asked alone: %s", chunk.index, answer.problems[chunk.id])
        jobs = [partial(self._one, session, title, chunk) for chunk in alone]
        redone = await gather_all(jobs, max(1, len(jobs)))
        found = {**answer.analyses, **{a.chunk_id: a for a in redone}}
        return [found[chunk.id] for chunk in batch]

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
