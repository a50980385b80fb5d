"""Choosing and opening the configured graph backend.

`serve(config, state_dir)` runs for the whole job in the runner process and yields a
picklable `GraphTarget`; `connect(target)` is called in each worker to get a `GraphStore`.
For the embedded FalkorDB backend `serve` starts (and at the end stops) the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.graph import GraphStore
from lexi_maint.graph.config import GraphConfig


@dataclass(frozen=True)
class GraphTarget:
    """Where workers write: everything a worker needs to connect, and nothing secret."""

    backend: str
    graph: str
    socket_path: Path | None = None  # falkordb: the embedded server's Unix socket


@contextmanager
def serve(config: GraphConfig, state_dir: Path) -> Iterator[GraphTarget]:
    from lexi_maint.graph.falkordb import FalkorServer

    with FalkorServer(state_dir) as server:
        yield GraphTarget(config.backend, config.name, socket_path=server.socket_path)


def connect(target: GraphTarget) -> GraphStore:
    from lexi_maint.graph.falkordb import FalkorGraphStore

    if target.socket_path is None:
        raise ValueError("falkordb target without a socket path")
    return FalkorGraphStore(target.socket_path, target.graph)


@contextmanager
def session(config: GraphConfig, state_dir: Path) -> Iterator[GraphStore]:
    """A store for a short operator command (stats, query, schema setup)."""
    with serve(config, state_dir) as target:
        store = connect(target)
        try:
            yield store
        finally:
            store.close()
