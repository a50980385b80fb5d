"""The stages of a job, registered explicitly, in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config import JobConfig
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import Stage
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.store import StoreStage
from lexi_maint.pipeline.worker import StageFactory


@dataclass(frozen=True)
class GraphTarget:
    """Where workers write: the embedded FalkorDB server's socket and the graph's name."""

    socket_path: Path
    graph: str


def stage_factory(job: JobConfig, target: GraphTarget) -> StageFactory:
    """A factory the worker process calls to build its stages (connections made there)."""

    def make() -> Sequence[Stage]:
        from lexi_maint.graph.falkordb import FalkorGraphStore

        store = FalkorGraphStore(target.socket_path, target.graph)
        return (
            ParseStage(job.parse),
            ChunkStage(job.chunk),
            AnalyzeStage(),
            StoreStage(store),
        )

    return make
