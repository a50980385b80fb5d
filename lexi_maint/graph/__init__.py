"""The graph store: what the pipeline needs from a graph database, and an in-memory fake.

`GraphStore` is the port. Its adapters share the Cypher of `lexi_maint.graph.cypher`:

    falkordb.py   FalkorGraphStore    the embedded FalkorDB server (redis protocol)
    memgraph.py   MemgraphGraphStore  a Memgraph server over Bolt, through the narrow
                                      `BoltSession` port; neo4jbolt.py is its only
                                      implementation and the only module importing neo4j
    backend.py    which one the configuration asks for, in the runner and in the workers

`FakeGraphStore` keeps documents in a dict with the same replace-by-path semantics, for
the tests that are not about the graph store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from lexi_maint.errors import GraphError
from lexi_maint.graph.model import (
    CHUNK,
    DOCUMENT,
    ENTITY_LABELS,
    HAS_CHUNK,
    MENTIONS,
    NEXT,
    REFERS_TO,
    DocumentRow,
    GraphDocument,
    GraphPart,
    GraphStats,
)

Rows = list[dict[str, object]]


class GraphStore(Protocol):
    def ensure_schema(self) -> tuple[str, ...]:
        """Create missing indexes (and constraints); safe on every start; name what it made."""
        ...

    def write_document(self, doc: GraphDocument) -> None:
        """Replace the document stored under `doc.path` (atomically where the engine can)."""

    def write_document_parts(
        self, path: str, parts: Iterable[GraphPart], document: Callable[[], DocumentRow]
    ) -> None:
        """Replace the document stored under `path` with a long document's `parts`, written
        one after the other (consumed lazily); `document()` gives its Document row once
        they are. Until the last step readers see the previous version whole, and if
        anything fails (a part, producing one, the last step) it stays so."""

    def delete_document(self, path: str) -> None:
        """Remove a document, its chunks and the entities nothing else mentions."""

    def stats(self) -> GraphStats:
        """Count nodes per label and relationships per type."""
        ...

    def query(self, statement: str, params: Mapping[str, object] | None = None) -> Rows:
        """Run Cypher; rows as dicts of plain Python values."""
        ...

    def close(self) -> None:
        """Release the connection."""


class FakeGraphStore:
    """An in-memory GraphStore: documents by path, counted as the real graph would count them.

    Set `failure` to make every write raise it. `query` runs `query_handler` if one is given
    and otherwise raises GraphError: the fake does not interpret Cypher.
    """

    def __init__(self, query_handler: Callable[[str, Mapping[str, object]], Rows] | None = None):
        self.documents: dict[str, GraphDocument] = {}
        self.failure: GraphError | None = None
        self.writes = 0
        self.parts_written = 0
        self.schema_ensured = False
        self.closed = False
        self._query_handler = query_handler

    def ensure_schema(self) -> tuple[str, ...]:
        created = () if self.schema_ensured else ("index (in memory)",)
        self.schema_ensured = True
        return created

    def write_document(self, doc: GraphDocument) -> None:
        if self.failure is not None:
            raise self.failure
        self.documents[doc.path] = doc
        self.writes += 1

    def write_document_parts(
        self, path: str, parts: Iterable[GraphPart], document: Callable[[], DocumentRow]
    ) -> None:
        if self.failure is not None:
            raise self.failure
        collected = list(parts)
        self.parts_written += len(collected)
        self.write_document(
            GraphDocument(
                document=document(),
                chunks=tuple(row for part in collected for row in part.chunks),
                next_pairs=tuple(row for part in collected for row in part.next_pairs),
                mentions=tuple(row for part in collected for row in part.mentions),
                references=tuple(row for part in collected for row in part.references),
            )
        )

    def delete_document(self, path: str) -> None:
        self.documents.pop(path, None)

    def stats(self) -> GraphStats:
        docs = self.documents.values()
        nodes = {
            DOCUMENT: len(self.documents),
            CHUNK: sum(len(d.chunks) for d in docs),
        }
        for label in ENTITY_LABELS:
            nodes[label] = len({m["name"] for d in docs for m in d.mentions_of(label)})
        relationships = {
            HAS_CHUNK: nodes[CHUNK],
            NEXT: sum(len(d.next_pairs) for d in docs),
            MENTIONS: sum(len(d.mentions) for d in docs),
            REFERS_TO: sum(len(d.references) for d in docs),
        }
        return GraphStats(nodes=nodes, relationships=relationships)

    def query(self, statement: str, params: Mapping[str, object] | None = None) -> Rows:
        if self._query_handler is None:
            raise GraphError("the in-memory graph store does not run Cypher")
        return self._query_handler(statement, params or {})

    def close(self) -> None:
        self.closed = True
