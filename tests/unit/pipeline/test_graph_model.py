"""The graph model (rows for UNWIND), the fake store, StoreStage.

The Cypher built from these rows is tested in test_graph_cypher.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lexi_maint.errors import DocumentError, ErrorClass, GraphError
from lexi_maint.graph import FakeGraphStore
from lexi_maint.graph.model import GraphStats
from lexi_maint.pipeline.articles import article_of_heading
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.graphdoc import articles_held, build_graph_document, entity_name
from lexi_maint.pipeline.schema import Amount, ChunkAnalysis, Percentage, Reference
from lexi_maint.pipeline.store import StoreStage


@dataclass(frozen=True)
class Part:
    """One chunk of a hand-made document and what its analysis found."""

    heading: str
    text: str
    terms: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    amounts: tuple[Amount, ...] = ()
    percentages: tuple[Percentage, ...] = ()
    refs: tuple[str, ...] = ()
    analysed: bool = field(default=True)


def make_work(path: str, parts: Sequence[Part], sha256: str = "ab" * 32) -> Work:
    text = "".join(p.text for p in parts)
    chunks: list[Chunk] = []
    offset = 0
    for index, part in enumerate(parts):
        chunk_id = f"{Path(path).stem}:{index:05d}"
        end = offset + len(part.text)
        chunks.append(Chunk(chunk_id, index, offset, end, part.heading, part.text))
        offset = end
    analyses = tuple(
        ChunkAnalysis(
            chunk_id=chunk.id,
            section_title=part.heading,
            defined_terms=part.terms,
            dates=part.dates,
            amounts=part.amounts,
            percentages=part.percentages,
            references=tuple(Reference(article=r, text=f"artikel {r}") for r in part.refs),
            parties=part.parties,
        )
        for chunk, part in zip(chunks, parts, strict=True)
        if part.analysed
    )
    source = SourceFile(Path(path), Path(path).parent, sha256, len(text))
    parsed = ParsedDocument(title="CAO Test", pages=3, text=text, encoding="pdf")
    return Work(source=source, parsed=parsed, chunks=tuple(chunks), analyses=analyses)


CAO = (
    Part("", "Inleiding\n", parties=("FNV", "CNV  Vakmensen")),
    Part("Artikel 1 Definities", "Artikel 1 ...\n", terms=("werknemer", "Werknemer ", "werkgever")),
    Part("Artikel 2 Loon", "Artikel 2 ...\n", terms=("werknemer",), refs=("1",)),
    Part("Artikel 2 Loon", "vervolg\n", amounts=(Amount(2450.0, "eur", "€ 2.450,00"),)),
    Part(
        "Artikel 3 Verlof",
        "Artikel 3 ...\n",
        dates=("2024-01-01", ""),
        percentages=(Percentage(3.5, "3,5%"),),
        refs=("2 lid 3", "2", "99", "3", "7:610 BW"),
    ),
)


def test_document_and_chunk_rows() -> None:
    doc = build_graph_document(make_work("/in/cao.pdf", CAO))
    assert doc.document == {
        "path": "/in/cao.pdf",
        "sha256": "ab" * 32,
        "title": "CAO Test",
        "pages": 3,
    }
    assert doc.path == "/in/cao.pdf"
    assert [c["id"] for c in doc.chunks] == [f"cao:{i:05d}" for i in range(5)]
    assert doc.chunks[1] == {
        "id": "cao:00001",
        "index": 1,
        "text": "Artikel 1 ...\n",
        "heading": "Artikel 1 Definities",
        "start": 10,
        "end": 24,
        "articles": ["1"],
    }


def test_chunks_are_ordered_by_index_and_next_links_neighbours() -> None:
    work = make_work("/in/cao.pdf", CAO)
    shuffled = Work(
        source=work.source,
        parsed=work.parsed,
        chunks=tuple(reversed(work.chunks)),
        analyses=work.analyses,
    )
    doc = build_graph_document(shuffled)
    assert [c["index"] for c in doc.chunks] == [0, 1, 2, 3, 4]
    assert [(p["source"], p["target"]) for p in doc.next_pairs] == [
        ("cao:00000", "cao:00001"),
        ("cao:00001", "cao:00002"),
        ("cao:00002", "cao:00003"),
        ("cao:00003", "cao:00004"),
    ]


def test_mentions_are_normalised_and_deduplicated_per_chunk() -> None:
    doc = build_graph_document(make_work("/in/cao.pdf", CAO))
    simple = [(m["chunk_id"], m["label"], m["name"]) for m in doc.mentions]
    assert simple == [
        ("cao:00000", "Party", "FNV"),
        ("cao:00000", "Party", "CNV Vakmensen"),
        ("cao:00001", "Term", "werknemer"),  # "Werknemer " is the same term
        ("cao:00001", "Term", "werkgever"),
        ("cao:00002", "Term", "werknemer"),  # same term, other chunk: its own mention
        ("cao:00003", "Amount", "EUR 2450"),
        ("cao:00004", "Date", "2024-01-01"),  # the blank date is dropped
        ("cao:00004", "Percentage", "3.5%"),
    ]
    (amount,) = doc.mentions_of("Amount")
    assert (amount["value"], amount["currency"]) == (2450.0, "EUR")
    (pct,) = doc.mentions_of("Percentage")
    assert pct["value"] == 3.5


def test_non_finite_numbers_are_not_entities() -> None:
    part = Part(
        "",
        "x",
        amounts=(Amount(float("nan"), "EUR", "?"), Amount(12.5, "", "12,50")),
        percentages=(Percentage(float("inf"), "?"),),
    )
    doc = build_graph_document(make_work("/in/a.txt", [part]))
    assert [(m["label"], m["name"]) for m in doc.mentions] == [("Amount", "12.5")]


def test_references_resolve_to_first_chunk_of_the_article() -> None:
    doc = build_graph_document(make_work("/in/cao.pdf", CAO))
    assert [(r["source"], r["target"], r["article"]) for r in doc.references] == [
        ("cao:00002", "cao:00001", "1"),
        # "2 lid 3" and "2" both land on the FIRST chunk of Artikel 2: one relationship
        ("cao:00004", "cao:00002", "2"),
    ]
    # "99" has no heading, "7:610 BW" is a code article; "3" refers to its own chunk (dropped)
    assert doc.unresolved_references == 2


def test_sub_article_reference_prefers_an_exact_heading() -> None:
    parts = [
        Part("Artikel 5 Loon", "a"),
        Part("Artikel 5.2 Toeslag", "b"),
        Part("Artikel 6", "c", refs=("5.2", "5.3", "artikel 5a")),
    ]
    doc = build_graph_document(make_work("/in/b.txt", parts))
    assert [(r["target"], r["article"]) for r in doc.references] == [
        ("b:00001", "5.2"),
        ("b:00000", "5"),  # no "Artikel 5.3": falls back to article 5
    ]
    assert doc.unresolved_references == 1  # "5a" is a different article


def test_unanalysed_document_has_no_mentions_or_references() -> None:
    parts = [Part("Artikel 1", "a", terms=("x",), analysed=False), Part("", "b", analysed=False)]
    doc = build_graph_document(make_work("/in/c.txt", parts))
    assert (len(doc.chunks), doc.mentions, doc.references) == (2, (), ())


def test_analysis_of_an_unknown_chunk_is_an_internal_error() -> None:
    work = make_work("/in/d.txt", [Part("", "a")])
    stray = ChunkAnalysis("other:00009", "", (), (), (), (), (), ())
    broken = Work(work.source, work.parsed, work.chunks, (*work.analyses, stray))
    with pytest.raises(DocumentError) as caught:
        build_graph_document(broken)
    assert caught.value.error_class is ErrorClass.INTERNAL
    assert "other:00009" in caught.value.message


@pytest.mark.parametrize(
    ("heading", "article"),
    [
        ("Artikel 5 Loon", "5"),
        ("ARTIKEL 12a - Verlof", "12a"),
        ("Art. 3.2 Toeslag", "3.2"),
        ("Artikel 4. Werktijden", "4"),
        ("Artikel 7Werkingssfeer", "7"),
        ("Hoofdstuk 2", None),
        ("Artikelen", None),
        ("", None),
    ],
)
def test_article_of_heading(heading: str, article: str | None) -> None:
    assert article_of_heading(heading) == article


def test_entity_name_rejects_labels_without_a_text_key() -> None:
    assert entity_name("Term", "  Arbeids   Overeenkomst ") == "arbeids overeenkomst"
    assert entity_name("Party", " CNV\nVakmensen ") == "CNV Vakmensen"
    with pytest.raises(ValueError, match="Amount"):
        entity_name("Amount", "5")


def test_fake_store_replaces_by_path_and_shares_entities() -> None:
    store = FakeGraphStore()
    store.write_document(build_graph_document(make_work("/in/cao.pdf", CAO)))
    store.write_document(
        build_graph_document(make_work("/in/other.txt", [Part("", "x", terms=("werknemer",))]))
    )
    store.write_document(
        build_graph_document(make_work("/in/cao.pdf", CAO[:2]))  # shorter new version
    )
    stats = store.stats()
    assert stats.nodes == {
        "Document": 2,
        "Chunk": 3,
        "Term": 2,  # werknemer (shared), werkgever
        "Party": 2,
        "Date": 0,
        "Amount": 0,
        "Percentage": 0,
    }
    assert stats.relationships == {"HAS_CHUNK": 3, "NEXT": 1, "MENTIONS": 5, "REFERS_TO": 0}
    store.delete_document("/in/cao.pdf")
    assert store.stats().node_count("Term") == 1
    assert store.stats().relationship_count("MENTIONS") == 1


def test_fake_store_does_not_pretend_to_run_cypher() -> None:
    with pytest.raises(GraphError, match="does not run Cypher"):
        FakeGraphStore().query("MATCH (n) RETURN n")
    handled = FakeGraphStore(query_handler=lambda q, p: [{"q": q, "p": dict(p)}])
    assert handled.query("RETURN $x", {"x": 1}) == [{"q": "RETURN $x", "p": {"x": 1}}]


def test_store_stage_writes_and_marks_stored() -> None:
    store = FakeGraphStore()
    work = StoreStage(store).run(make_work("/in/cao.pdf", CAO))
    assert work.stored is True
    assert list(store.documents) == ["/in/cao.pdf"]
    assert store.stats().node_count("Chunk") == 5
    assert work.warnings == (
        "2 reference(s) to articles without a matching heading in this document were not linked",
    )


def test_store_stage_turns_graph_errors_into_retryable_document_errors() -> None:
    store = FakeGraphStore()
    store.failure = GraphError("FalkorDB on /s/falkordb.sock is unreachable")
    with pytest.raises(DocumentError) as caught:
        StoreStage(store).run(make_work("/in/cao.pdf", CAO))
    assert caught.value.error_class is ErrorClass.GRAPH
    assert caught.value.retryable is True
    assert "/s/falkordb.sock" in caught.value.message
    assert store.documents == {}


def test_graph_stats_defaults_to_zero() -> None:
    stats = GraphStats(nodes={"Chunk": 4}, relationships={})
    assert (stats.node_count("Chunk"), stats.node_count("Term")) == (4, 0)
    assert stats.relationship_count("NEXT") == 0


def test_article_of_a_nested_heading_is_its_last_part() -> None:
    assert article_of_heading("Hoofdstuk 3 Beloning > Artikel 5a Loon") == "5a"
    assert article_of_heading("Hoofdstuk 3 Beloning") is None


def test_fake_store_reports_schema_creation_once() -> None:
    store = FakeGraphStore()
    assert store.ensure_schema() == ("index (in memory)",)
    assert store.ensure_schema() == ()
    assert store.schema_ensured is True


def test_articles_held_lists_every_heading_and_the_article_a_chunk_continues() -> None:
    texts = [
        "Inleiding\nArtikel 1 Begrippen\nKort.\nArtikel 2 Loon\nHet loon is",
        " hoog.\nArtikel 3 Verlof\n",
        "nog meer verlof.\n",
        "Hoofdstuk 2 Slot\nTekst zonder artikel.\n",
        "Bijlage 1 Loontabel\nA  2.000,00\n",
        "B  2.100,00\n",
    ]
    chunks = []
    offset = 0
    for index, text in enumerate(texts):
        chunks.append(Chunk(f"c{index}", index, offset, offset + len(text), "", text))
        offset += len(text)
    assert articles_held(chunks) == [
        ["1", "2"],
        ["2", "3"],
        ["3"],
        [],
        ["bijlage 1"],
        ["bijlage 1"],
    ]
    titled = [Chunk("t", 0, 0, 5, "Artikel 9 Slot", "Tekst")]  # a model's title alone
    assert articles_held(titled) == [["9"]]
