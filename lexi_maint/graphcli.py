"""`lexi-maint graph stats|query`: start the embedded graph server briefly and ask it."""

from __future__ import annotations

import json

from lexi_maint.config import Config
from lexi_maint.jobrun import StatePaths, state_lock


def graph_stats(config: Config) -> str:
    from lexi_maint.graph.falkordb import FalkorGraphStore, FalkorServer

    paths = StatePaths(config.state_dir)
    with state_lock(paths), FalkorServer(paths.root) as server:
        store = FalkorGraphStore(server.socket_path, config.graph.name)
        try:
            stats = store.stats()
        finally:
            store.close()
    lines = [f"{label:<12} {count:>8}" for label, count in stats.nodes.items()]
    lines += [f"{rel:<12} {count:>8}" for rel, count in stats.relationships.items()]
    return "\n".join(
        [
            "nodes" + " " * 15 + "count",
            *lines[: len(stats.nodes)],
            "relationships" + " " * 7 + "count",
            *lines[len(stats.nodes) :],
        ]
    )


def graph_query(config: Config, cypher: str) -> str:
    from lexi_maint.graph.falkordb import FalkorGraphStore, FalkorServer

    paths = StatePaths(config.state_dir)
    with state_lock(paths), FalkorServer(paths.root) as server:
        store = FalkorGraphStore(server.socket_path, config.graph.name)
        try:
            rows = store.query(cypher)
        finally:
            store.close()
    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
