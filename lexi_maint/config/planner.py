"""The `[planner]` section: the memory planner's defaults and margins."""

from __future__ import annotations

from dataclasses import dataclass

from lexi_maint.config.table import Table
from lexi_maint.units import MiB


@dataclass(frozen=True)
class PlannerConfig:
    default_document_peak: int = 256 * MiB  # a worker's peak with no history of its type
    default_bytes_factor: float = 4.0  # plus this many bytes per byte of input
    document_ceiling: int = 320 * MiB  # no size-based prediction goes past the streaming bound
    runner: int = 96 * MiB  # the runner process itself (measured largest process: 58 MB)
    graph_base: int = 32 * MiB  # the embedded FalkorDB server, empty
    graph_per_chunk: int = 4096  # and per chunk it holds (measured about 2 KB; ×2 for forks)
    # the chunks a run adds, with no history: one per this many bytes of pending input
    graph_bytes_per_chunk: int = 1024
    graph_memory_max: int = 2 * 2**30  # daemon runs: the graph unit's MemoryMax, at most
    # the graph unit's own process, `lexi-maint graph serve` (measured 36 MB RSS, 28 MB PSS)
    graph_supervisor: int = 64 * MiB
    headroom: float = 1.25  # MemoryMax = expected peak × headroom (never above the cap)
    host_reserve: int = 256 * MiB  # left available to the host beyond the job's cap


def parse_planner(top: Table) -> PlannerConfig:
    default = PlannerConfig()
    with top.sub("planner") as t:
        config = PlannerConfig(
            default_document_peak=_size(t, "default_document_peak", default.default_document_peak),
            default_bytes_factor=t.number(
                "default_bytes_factor", default.default_bytes_factor, low=0.0, high=1000.0
            ),
            document_ceiling=_size(t, "document_ceiling", default.document_ceiling),
            runner=_size(t, "runner", default.runner),
            graph_base=_size(t, "graph_base", default.graph_base),
            graph_per_chunk=_size(t, "graph_per_chunk", default.graph_per_chunk),
            graph_bytes_per_chunk=max(
                1, _size(t, "graph_bytes_per_chunk", default.graph_bytes_per_chunk)
            ),
            graph_memory_max=_size(t, "graph_memory_max", default.graph_memory_max),
            graph_supervisor=_size(t, "graph_supervisor", default.graph_supervisor),
            headroom=t.number("headroom", default.headroom, low=1.0, high=10.0),
            host_reserve=_size(t, "host_reserve", default.host_reserve),
        )
    return config


def _size(t: Table, key: str, default: int) -> int:
    value = t.size(key, default)
    return default if value is None else value
