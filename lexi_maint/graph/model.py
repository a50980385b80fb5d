"""The graph model of a document, as plain rows ready for `UNWIND` (pure; no I/O).

Nodes and relationships::

    (:Document {path, sha256, title, pages})-[:HAS_CHUNK]->(:Chunk {id, index, text, heading,
                                                                    start, end, articles})
    (:Chunk)-[:NEXT]->(:Chunk)                     consecutive chunks of one document
    (:Chunk)-[:MENTIONS]->(:Term|:Party|:Date|:Amount|:Percentage {name})
    (:Chunk)-[:REFERS_TO {article}]->(:Chunk)      "zie artikel 5" -> the chunk holding Artikel 5

The rows are built from a processed document by `lexi_maint.pipeline.graphdoc`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

DOCUMENT = "Document"
CHUNK = "Chunk"
TERM = "Term"
PARTY = "Party"
DATE = "Date"
AMOUNT = "Amount"
PERCENTAGE = "Percentage"
ENTITY_LABELS = (TERM, PARTY, DATE, AMOUNT, PERCENTAGE)
NODE_LABELS = (DOCUMENT, CHUNK, *ENTITY_LABELS)

HAS_CHUNK = "HAS_CHUNK"
NEXT = "NEXT"
MENTIONS = "MENTIONS"
REFERS_TO = "REFERS_TO"
RELATIONSHIP_TYPES = (HAS_CHUNK, NEXT, MENTIONS, REFERS_TO)


class DocumentRow(TypedDict):
    path: str
    sha256: str
    title: str
    pages: int


class ChunkRow(TypedDict):
    id: str
    index: int
    text: str
    heading: str
    start: int
    end: int
    articles: list[str]  # keys of the articles the chunk holds, in order


class NextRow(TypedDict):
    source: str  # chunk id
    target: str  # chunk id of the following chunk


class MentionRow(TypedDict):
    chunk_id: str
    label: str  # one of ENTITY_LABELS
    name: str  # the entity's key
    value: NotRequired[float]  # Amount and Percentage
    currency: NotRequired[str]  # Amount


class ReferenceRow(TypedDict):
    source: str  # chunk id of the referring chunk
    target: str  # chunk id of the referenced article's first chunk
    article: str  # the article number as resolved ("5")


@dataclass(frozen=True)
class GraphDocument:
    """One document's nodes and relationships as rows; written as one unit."""

    document: DocumentRow
    chunks: tuple[ChunkRow, ...]
    next_pairs: tuple[NextRow, ...]
    mentions: tuple[MentionRow, ...]
    references: tuple[ReferenceRow, ...]
    unresolved_references: int = 0

    @property
    def path(self) -> str:
        return self.document["path"]

    def mentions_of(self, label: str) -> tuple[MentionRow, ...]:
        return tuple(m for m in self.mentions if m["label"] == label)


@dataclass(frozen=True)
class GraphStats:
    """How many nodes per label and relationships per type a graph holds."""

    nodes: Mapping[str, int] = field(default_factory=dict)
    relationships: Mapping[str, int] = field(default_factory=dict)

    def node_count(self, label: str) -> int:
        return self.nodes.get(label, 0)

    def relationship_count(self, rel_type: str) -> int:
        return self.relationships.get(rel_type, 0)
