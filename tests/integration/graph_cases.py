"""Documents and checks shared by the graph-store tests of every backend.

The queries here are written in the Cypher both engines accept (no bare pattern
predicates, no exists(pattern)), so the same check runs on FalkorDB and on Memgraph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lexi_maint.graph import GraphStore
from lexi_maint.graph.model import ENTITY_LABELS, GraphDocument
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.graphdoc import build_graph_document
from lexi_maint.pipeline.schema import Amount, ChunkAnalysis, Percentage, Reference

Section = tuple[str, str, Sequence[str], Sequence[str]]  # heading, text, terms, references


def make_doc(path: str, sections: Sequence[Section], sha256: str = "0" * 64) -> GraphDocument:
    """A document through build_graph_document, one chunk per section."""
    chunks: list[Chunk] = []
    analyses: list[ChunkAnalysis] = []
    offset = 0
    for index, (heading, text, terms, refs) in enumerate(sections):
        chunk_id = f"{Path(path).stem}:{index:05d}"
        chunks.append(Chunk(chunk_id, index, offset, offset + len(text), heading, text))
        offset += len(text)
        analyses.append(
            ChunkAnalysis(
                chunk_id=chunk_id,
                section_title=heading,
                defined_terms=tuple(terms),
                dates=("2024-01-01",) if index == 0 else (),
                amounts=(Amount(2450.0, "EUR", "€ 2.450"),) if index == 1 else (),
                percentages=(Percentage(3.5, "3,5%"),) if index == 1 else (),
                references=tuple(Reference(r, f"artikel {r}") for r in refs),
                parties=("FNV",) if index == 0 else (),
            )
        )
    text = "".join(s[1] for s in sections)
    work = Work(
        source=SourceFile(Path(path), Path(path).parent, sha256, len(text)),
        parsed=ParsedDocument(title=Path(path).stem, pages=2, text=text, encoding="pdf"),
        chunks=tuple(chunks),
        analyses=tuple(analyses),
    )
    return build_graph_document(work)


CAO: list[Section] = [
    ("Artikel 1 Definities", "Artikel 1\nwerknemer: ...\n", ["werknemer", "werkgever"], []),
    ("Artikel 2 Loon", "Artikel 2\nHet loon ...\n", ["werknemer", "loon"], ["1"]),
    ("Artikel 2 Loon", "vervolg, zie artikel 3\n", [], ["3"]),
    ("Artikel 3 Verlof", "Artikel 3\nVerlof ...\n", ["verlof"], ["2", "99"]),
]
CAO_STATS_NODES = {
    "Document": 1,
    "Chunk": 4,
    "Term": 4,  # werknemer, werkgever, loon, verlof
    "Party": 1,
    "Date": 1,
    "Amount": 1,
    "Percentage": 1,
}
CAO_STATS_RELATIONSHIPS = {
    "HAS_CHUNK": 4,
    "NEXT": 3,
    "MENTIONS": 9,  # 2 + 2 + 0 + 1 terms, party, date, amount, percentage
    "REFERS_TO": 3,  # 2->1, 2b->3, 3->2 ("99" unresolved)
}
# A shorter, changed version of CAO: what is left after it replaced CAO.
CAO_V2: list[Section] = [
    ("Artikel 1 Definities", "Artikel 1\nnieuw\n", ["werknemer", "nieuwe term"], []),
    ("Artikel 2 Loon", "Artikel 2\n", [], ["1"]),
]
CAO_V2_STATS_NODES = {
    "Document": 1,
    "Chunk": 2,
    "Term": 2,
    "Party": 1,
    "Date": 1,
    "Amount": 1,
    "Percentage": 1,
}
CAO_V2_STATS_RELATIONSHIPS = {"HAS_CHUNK": 2, "NEXT": 1, "MENTIONS": 6, "REFERS_TO": 1}


def orphans(store: GraphStore) -> tuple[object, object]:
    """(chunks without a document, entities without a mention)."""
    chunks = store.query(
        "MATCH (c:Chunk) OPTIONAL MATCH (d)-[h:HAS_CHUNK]->(c) "
        "WITH c, count(h) AS owners WHERE owners = 0 RETURN count(c) AS n"
    )
    labels = " OR ".join(f"e:{label}" for label in ENTITY_LABELS)
    entities = store.query(
        f"MATCH (e) WHERE {labels} OPTIONAL MATCH (c)-[m:MENTIONS]->(e) "
        "WITH e, count(m) AS mentions WHERE mentions = 0 RETURN count(e) AS n"
    )
    return chunks[0]["n"], entities[0]["n"]
