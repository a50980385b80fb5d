"""A processed document as graph rows (`GraphDocument`, see lexi_maint.graph.model) (pure).

Entity nodes are shared by every document that mentions them; their key is `name`, the
normalised form built by `entity_name`: terms are case-folded ("Werknemer" and "werknemer"
are one term), parties keep their case, dates are ISO dates, amounts read "EUR 2450.5" and
percentages "3.5%" (Amount and Percentage nodes also carry `value`, and Amount `currency`).
Blank names and non-finite numbers are dropped.

Every chunk lists the keys of the articles it holds (`articles`, see
`lexi_maint.pipeline.articles`: "5", "3.1", "bijlage 1"): those whose heading line lies in the
chunk, and first the article the chunk continues when it starts inside one. So an article
merged into a neighbour's chunk by the minimum chunk size is still found, by any chunker
(embedded or LLM): the headings are read from the chunks' text, which tiles the document.

References are resolved inside the document: a chunk whose analysis references article "5"
points at the first chunk that holds article "5". A reference to "5.2" or "5 lid 2" falls
back to article "5" when no chunk holds "5.2". References that match no article are dropped
and counted in `GraphDocument.unresolved_references`; a chunk referring to itself is dropped
silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.graph.model import (
    AMOUNT,
    DATE,
    PARTY,
    PERCENTAGE,
    TERM,
    ChunkRow,
    DocumentRow,
    GraphDocument,
    MentionRow,
    NextRow,
    ReferenceRow,
)
from lexi_maint.pipeline.articles import (
    Kind,
    article_of_heading,
    find_headings,
    resolve_reference,
)
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.pipeline.schema import ChunkAnalysis


def build_graph_document(work: Work) -> GraphDocument:
    """Turn a chunked (and possibly analysed) document into rows for the graph store."""
    parsed = work.require_parsed()
    chunks = tuple(sorted(work.chunks, key=lambda c: c.index))
    analyses = _analyses_by_chunk(work.analyses, chunks)
    held = articles_held(chunks)
    references, unresolved = _references(chunks, held, analyses)
    return GraphDocument(
        document=DocumentRow(
            path=str(work.source.path),
            sha256=work.source.sha256,
            title=storable(parsed.title),
            pages=parsed.pages,
        ),
        chunks=tuple(_chunk_row(c, articles) for c, articles in zip(chunks, held, strict=True)),
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


def articles_held(chunks: Sequence[Chunk]) -> list[list[str]]:
    """For each chunk (in order), the keys of the articles it holds (see the module doc)."""
    headings = find_headings("".join(chunk.text for chunk in chunks))
    held: list[list[str]] = []
    index, current, offset = 0, "", 0
    for chunk in chunks:
        end = offset + len(chunk.text)
        starts_inside = index == len(headings) or headings[index].start > offset
        keys = [current] if current and starts_inside else []
        while index < len(headings) and headings[index].start < end:
            line = headings[index]
            current = line.key if line.kind is Kind.ARTICLE or line.key else ""
            if line.key and line.key not in keys:
                keys.append(line.key)
            index += 1
        named = article_of_heading(chunk.heading)  # a model's title may name it alone
        held.append(keys if named is None or named in keys else [named, *keys])
        offset = end
    return held


def _chunk_row(chunk: Chunk, articles: list[str]) -> ChunkRow:
    return ChunkRow(
        id=chunk.id,
        index=chunk.index,
        text=storable(chunk.text),
        heading=storable(chunk.heading),
        start=chunk.start,
        end=chunk.end,
        articles=articles,
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
    chunks: tuple[Chunk, ...], held: list[list[str]], analyses: Mapping[str, ChunkAnalysis]
) -> tuple[tuple[ReferenceRow, ...], int]:
    first_chunk: dict[str, str] = {}
    for chunk, keys in zip(chunks, held, strict=True):
        for key in keys:
            first_chunk.setdefault(key, chunk.id)
    rows: dict[tuple[str, str], ReferenceRow] = {}
    unresolved = 0
    for chunk in chunks:
        analysis = analyses.get(chunk.id)
        for ref in analysis.references if analysis else ():
            article = resolve_reference(ref.article, first_chunk)
            if article is None:
                unresolved += 1
            elif first_chunk[article] != chunk.id:
                target = first_chunk[article]
                rows.setdefault(
                    (chunk.id, target),
                    ReferenceRow(source=chunk.id, target=target, article=article),
                )
    return tuple(rows.values()), unresolved
