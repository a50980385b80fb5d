"""`lexi-maint graph stats|query`: open the configured graph store briefly and ask it."""

from __future__ import annotations

import json

from lexi_maint.config import Config
from lexi_maint.graph.backend import session
from lexi_maint.jobrun import StatePaths, state_lock


def graph_stats(config: Config) -> str:
    paths = StatePaths(config.state_dir)
    with state_lock(paths), session(config.graph, paths.root) as store:
        stats = store.stats()
    width = max(map(len, [*stats.nodes, *stats.relationships]), default=10) + 2
    lines = ["nodes"]
    lines += [f"  {label:<{width}}{count:>8}" for label, count in stats.nodes.items()]
    lines.append("relationships")
    lines += [f"  {rel:<{width}}{count:>8}" for rel, count in stats.relationships.items()]
    return "\n".join(lines)


def graph_query(config: Config, cypher: str) -> str:
    paths = StatePaths(config.state_dir)
    with state_lock(paths), session(config.graph, paths.root) as store:
        rows = store.query(cypher)
    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)
