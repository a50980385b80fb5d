"""The stages of a job, registered explicitly, in order.

`[llm] provider = "none"`: parse, chunk (structural), analyze (embedded), store.
`[llm] provider = "deepseek"`: parse, chunk (the chunk model), analyze (the reasoning
model), store. The API key is read here, in the runner process, before any worker starts.
"""

from __future__ import annotations

from collections.abc import Sequence

from lexi_maint.config import JobConfig
from lexi_maint.graph.backend import GraphTarget, connect
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import Stage
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.store import StoreStage
from lexi_maint.pipeline.worker import StageFactory


def stage_factory(job: JobConfig, target: GraphTarget) -> StageFactory:
    """A factory the worker process calls to build its stages (connections made there)."""
    if job.llm.enabled:
        return _llm_stage_factory(job, target)

    def make() -> Sequence[Stage]:
        return (
            ParseStage(job.parse),
            ChunkStage(job.chunk),
            AnalyzeStage(),
            StoreStage(connect(target)),
        )

    return make


def _llm_stage_factory(job: JobConfig, target: GraphTarget) -> StageFactory:
    from lexi_maint.llm.cache import ResponseCache
    from lexi_maint.llm.keys import load_api_key
    from lexi_maint.llm.runtime import LlmRuntime
    from lexi_maint.pipeline.llm_analyze import LlmAnalyzeStage
    from lexi_maint.pipeline.llm_chunk import LlmChunkStage

    runtime = LlmRuntime(job.llm, load_api_key(job.llm), job=job.name)
    ResponseCache.prepare(job.llm.cache_path)  # before any worker opens it

    def make() -> Sequence[Stage]:
        return (
            ParseStage(job.parse),
            LlmChunkStage(job.chunk, runtime),
            LlmAnalyzeStage(runtime, job.chunk),
            StoreStage(connect(target)),
        )

    return make
