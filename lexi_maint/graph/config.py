"""The `[graph]` section of the configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lexi_maint.tomltable import Table

GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]+")
BACKENDS = ("falkordb",)


@dataclass(frozen=True)
class GraphConfig:
    backend: str = "falkordb"
    name: str = "lexi"  # the graph's name inside the store


def parse_graph(top: Table) -> GraphConfig:
    with top.sub("graph") as t:
        backend = t.choice("backend", BACKENDS, "falkordb")
        name = t.string("name", "lexi", pattern=GRAPH_NAME)
    return GraphConfig(backend=backend, name=name)
