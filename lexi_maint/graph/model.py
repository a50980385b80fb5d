"""The graph model of a document, as plain rows ready for `UNWIND` (pure; no I/O).

Nodes and relationships::

    (:Document {path, sha256, title, pages})-[:HAS_CHUNK]->(:Chunk {id, index, text, heading,
                                                                    start, end})
    (:Chunk)-[:NEXT]->(:Chunk)                     consecutive chunks of one document
    (:Chunk)-[:MENTIONS]->(:Term|:Party|:Date|:Amount|:Percentage {name})
    (:Chunk)-[:REFERS_TO {article}]->(:Chunk)      "zie artikel 5" -> first chunk of Artikel 5

Entity nodes are shared by every document that mentions them; their key is `name`, the
normalised form built by `entity_name`: terms are case-folded ("Werknemer" and "werknemer"
are one term), parties keep their case, dates are ISO dates, amounts read "EUR 2450.5" and
percentages "3.5%" (Amount and Percentage nodes also carry `value`, and Amount `currency`).
Blank names and non-finite numbers are dropped.

References are resolved inside the document: a chunk whose analysis references article "5"
points at the first chunk whose heading is that article ("Artikel 5 Loon"). A reference to
"5.2" or "5 lid 2" falls back to article "5" when no heading names "5.2". References that
match no heading are dropped and counted in `GraphDocument.unresolved_references`; a chunk
referring to itself is dropped silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NotRequired, TypedDict

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.pipeline.schema import ChunkAnalysis

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

# "5", "5a", "5.2"; not "7:610" (a book of a code, as in "artikel 7:610 BW")
_NUMBER = r"(\d+(?:[a-z](?![a-z]))?(?:\.\d+)*)(?![:\d])"
_ARTICLE_HEADING = re.compile(r"^\s*(?:artikel|art\.?)\s*" + _NUMBER, re.IGNORECASE)
_ARTICLE_NUMBER = re.compile(r"^\s*(?:(?:artikel|art\.?)\s*)?" + _NUMBER, re.IGNORECASE)


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


def build_graph_document(work: Work) -> GraphDocument:
    """Turn a chunked (and possibly analysed) document into rows for the graph store."""
    parsed = work.require_parsed()
    chunks = tuple(sorted(work.chunks, key=lambda c: c.index))
    analyses = _analyses_by_chunk(work.analyses, chunks)
    references, unresolved = _references(chunks, analyses)
    return GraphDocument(
        document=DocumentRow(
            path=str(work.source.path),
            sha256=work.source.sha256,
            title=storable(parsed.title),
            pages=parsed.pages,
        ),
        chunks=tuple(_chunk_row(c) for c in chunks),
        next_pairs=tuple(NextRow(source=a.id, target=b.id) for a, b in pairwise(chunks)),
        mentions=tuple(_unique_mentions(_mentions(analyses))),
        references=references,
        unresolved_references=unresolved,
    )


def storable(text: str) -> str:
    """`text` with the characters graph stores refuse (NUL) replaced by U+FFFD.

    One character for one, so chunk offsets stay true. Untrusted text (a PDF's, a model's
    answer) may hold NUL; FalkorDB rejects the whole query for it, on every retry.
    """
    return text.replace("\0", "\ufffd")


def entity_name(label: str, raw: str) -> str:
    """The key of a Term, Party or Date node for a raw value ("" when blank)."""
    collapsed = storable(" ".join(raw.split()))
    if label == TERM:
        return collapsed.casefold()
    if label in (PARTY, DATE):
        return collapsed
    raise ValueError(f"entity_name: {label!r} is not a Term, Party or Date label")


def article_of_heading(heading: str) -> str | None:
    """The article number of a heading ("Artikel 5a Loon" -> "5a"), if any.

    The chunker writes nested headings as "Hoofdstuk 3 Beloning > Artikel 5a Loon"; the
    article is the last part.
    """
    match = _ARTICLE_HEADING.match(heading.rsplit(" > ", 1)[-1])
    return match.group(1).lower() if match else None


def _chunk_row(chunk: Chunk) -> ChunkRow:
    return ChunkRow(
        id=chunk.id,
        index=chunk.index,
        text=storable(chunk.text),
        heading=storable(chunk.heading),
        start=chunk.start,
        end=chunk.end,
    )


def _analyses_by_chunk(
    analyses: Iterable[ChunkAnalysis], chunks: tuple[Chunk, ...]
) -> dict[str, ChunkAnalysis]:
    known = {c.id for c in chunks}
    by_chunk = {a.chunk_id: a for a in analyses}
    stray = sorted(set(by_chunk) - known)
    if stray:
        raise DocumentError(
            ErrorClass.INTERNAL,
            f"analyses for chunks that are not in the document: {', '.join(stray)}",
        )
    return by_chunk


def _mentions(analyses: Mapping[str, ChunkAnalysis]) -> Iterator[MentionRow]:
    for chunk_id, analysis in analyses.items():
        for label, values in (
            (TERM, analysis.defined_terms),
            (PARTY, analysis.parties),
            (DATE, analysis.dates),
        ):
            for raw in values:
                yield MentionRow(chunk_id=chunk_id, label=label, name=entity_name(label, raw))
        for amount in analysis.amounts:
            if math.isfinite(amount.value):
                currency = storable(amount.currency.strip().upper())
                name = f"{currency} {_number(amount.value)}".strip()
                yield MentionRow(
                    chunk_id=chunk_id,
                    label=AMOUNT,
                    name=name,
                    value=amount.value,
                    currency=currency,
                )
        for pct in analysis.percentages:
            if math.isfinite(pct.value):
                yield MentionRow(
                    chunk_id=chunk_id,
                    label=PERCENTAGE,
                    name=f"{_number(pct.value)}%",
                    value=pct.value,
                )


def _unique_mentions(rows: Iterable[MentionRow]) -> Iterator[MentionRow]:
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        key = (row["chunk_id"], row["label"], row["name"])
        if row["name"] and key not in seen:
            seen.add(key)
            yield row


def _number(value: float) -> str:
    """2450.0 -> "2450", 3.5 -> "3.5": one spelling per value, so one node per value."""
    return str(int(value)) if value.is_integer() else repr(value)


def _references(
    chunks: tuple[Chunk, ...], analyses: Mapping[str, ChunkAnalysis]
) -> tuple[tuple[ReferenceRow, ...], int]:
    first_chunk: dict[str, str] = {}
    for chunk in chunks:
        article = article_of_heading(chunk.heading)
        if article is not None:
            first_chunk.setdefault(article, chunk.id)
    rows: dict[tuple[str, str], ReferenceRow] = {}
    unresolved = 0
    for chunk in chunks:
        analysis = analyses.get(chunk.id)
        for ref in analysis.references if analysis else ():
            article = _resolve(ref.article, first_chunk)
            if article is None:
                unresolved += 1
            elif first_chunk[article] != chunk.id:
                target = first_chunk[article]
                rows.setdefault(
                    (chunk.id, target),
                    ReferenceRow(source=chunk.id, target=target, article=article),
                )
    return tuple(rows.values()), unresolved


def _resolve(reference: str, first_chunk: Mapping[str, str]) -> str | None:
    match = _ARTICLE_NUMBER.match(reference)
    if match is None:
        return None
    number = match.group(1).lower()
    if number in first_chunk:
        return number
    main = number.split(".", 1)[0]
    return main if main in first_chunk else None
