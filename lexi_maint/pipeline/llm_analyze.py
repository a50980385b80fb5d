"""Pipeline stage "analyze" with the reasoning model: one validated ChunkAnalysis per chunk.

All chunks of the document are asked concurrently (at most `document_concurrency` calls,
and the job-wide `max_concurrency`). Each answer must pass `schema.parse_analysis`, exactly
like the embedded analyzer's output; a blank or invalid answer is asked again, and when
every answer for a chunk is rejected the document fails (llm_invalid_output) with the
reason and the start of the raw answer. The model's `reasoning_content` is never kept:
only its token count reaches the ledger.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from functools import partial

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.llm.prompts import analysis_request, parse_analysis_answer
from lexi_maint.llm.runtime import LlmRuntime, gather_all
from lexi_maint.llm.session import AnswerRejected, LlmSession
from lexi_maint.llm.usage import Usage, UsageMeter
from lexi_maint.pipeline.contract import Chunk, Work
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
        analyses = asyncio.run(self._analyze(title, work.chunks))
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

    async def _analyze(self, title: str, chunks: tuple[Chunk, ...]) -> list[ChunkAnalysis]:
        async with self.runtime.session(self._meter) as session:
            jobs = [partial(self._one, session, title, chunk) for chunk in chunks]
            return await gather_all(jobs, self.runtime.config.document_concurrency)

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
