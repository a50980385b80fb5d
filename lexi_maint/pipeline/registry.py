"""The stages of a job, registered explicitly, in order."""

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

    def make() -> Sequence[Stage]:
        return (
            ParseStage(job.parse),
            ChunkStage(job.chunk),
            AnalyzeStage(),
            StoreStage(connect(target)),
        )

    return make
