"""The graph-store contract, on every backend (`contract_store`, see conftest.py):

- falkordb: the embedded FalkorDB store (one atomic query per document);
- memgraph-logic-on-falkordb: the Memgraph store's transaction body (stale-entity read,
  chunk deletion, batches of 2 rows, orphan deletion) run statement by statement on the
  real FalkorDB engine, so its Cypher and its order are proven on a real engine here;
- memgraph: a real Memgraph over Bolt when $LEXI_TEST_MEMGRAPH_URI names one (skipped with
  that reason otherwise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from lexi_maint.errors import DocumentError, ErrorClass, GraphError
from lexi_maint.graph import FakeGraphStore, GraphStore
from lexi_maint.graph.model import GraphDocument, GraphPart, MentionRow
from tests.integration.graph_cases import (
    CAO,
    CAO_STATS_NODES,
    CAO_STATS_RELATIONSHIPS,
    CAO_V2,
    CAO_V2_STATS_NODES,
    CAO_V2_STATS_RELATIONSHIPS,
    Section,
    make_doc,
    orphans,
)

pytestmark = pytest.mark.integration


def test_write_document_creates_every_node_and_relationship(contract_store: GraphStore) -> None:
    doc = make_doc("/in/cao.pdf", CAO)
    assert doc.unresolved_references == 1
    contract_store.write_document(doc)
    stats = contract_store.stats()
    assert stats.nodes == CAO_STATS_NODES
    assert stats.relationships == CAO_STATS_RELATIONSHIPS
    fake = FakeGraphStore()
    fake.write_document(doc)
    assert fake.stats() == stats  # the fake counts what the real graph holds


def test_document_and_chunk_properties_round_trip(contract_store: GraphStore) -> None:
    tricky = "quote \" backslash \\ \\n not-a-newline\nnewline\ttab {brace} $param `tick` é ✅ 's"
    contract_store.write_document(make_doc("/in/we ird'.pdf", [("Artikel 1", tricky, [], [])]))
    rows = contract_store.query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) "
        "RETURN d.path AS path, d.title AS title, d.pages AS pages, d.sha256 AS sha, "
        "c.id AS id, c.index AS index, c.`text` AS `text`, c.heading AS heading, "
        "c.start AS start, c.end AS end, c.articles AS articles"
    )
    assert rows == [
        {
            "path": "/in/we ird'.pdf",
            "title": "we ird'",
            "pages": 2,
            "sha": "0" * 64,
            "id": "we ird':00000",
            "index": 0,
            "text": tricky,
            "heading": "Artikel 1",
            "start": 0,
            "end": len(tricky),
            "articles": ["1"],
        }
    ]


def test_importing_the_same_document_twice_gives_the_same_counts(
    contract_store: GraphStore,
) -> None:
    doc = make_doc("/in/cao.pdf", CAO)
    contract_store.write_document(doc)
    first = contract_store.stats()
    contract_store.write_document(doc)
    assert contract_store.stats() == first
    assert first.nodes == CAO_STATS_NODES
    assert orphans(contract_store) == (0, 0)


def test_a_changed_document_replaces_its_previous_version_without_orphans(
    contract_store: GraphStore,
) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    contract_store.write_document(make_doc("/in/cao.pdf", CAO_V2, sha256="1" * 64))
    stats = contract_store.stats()
    assert stats.nodes == CAO_V2_STATS_NODES
    assert stats.relationships == CAO_V2_STATS_RELATIONSHIPS
    assert orphans(contract_store) == (0, 0)
    terms = contract_store.query("MATCH (t:Term) RETURN t.name AS name ORDER BY name")
    assert terms == [{"name": "nieuwe term"}, {"name": "werknemer"}]
    texts = contract_store.query(
        "MATCH (d:Document {path: '/in/cao.pdf'})-[:HAS_CHUNK]->(c) "
        "RETURN d.sha256 AS sha, c.`text` AS `text` ORDER BY c.index"
    )
    assert texts == [
        {"sha": "1" * 64, "text": "Artikel 1\nnieuw\n"},
        {"sha": "1" * 64, "text": "Artikel 2\n"},
    ]


def test_a_document_larger_than_a_batch_is_written_whole(contract_store: GraphStore) -> None:
    sections: list[Section] = [
        (f"Artikel {i + 1} Onderwerp", f"Artikel {i + 1}\ntekst {i}\n", [f"term{i % 7}"],
         [str(i)] if i else [])
        for i in range(25)
    ]  # fmt: skip
    contract_store.write_document(make_doc("/in/big.pdf", sections))
    stats = contract_store.stats()
    assert stats.node_count("Chunk") == 25
    assert stats.node_count("Term") == 7
    assert stats.relationships == {"HAS_CHUNK": 25, "NEXT": 24, "MENTIONS": 29, "REFERS_TO": 24}
    contract_store.write_document(make_doc("/in/big.pdf", sections[:3]))
    assert contract_store.stats().node_count("Term") == 3
    assert orphans(contract_store) == (0, 0)


def test_documents_share_entity_nodes_until_the_last_mention_goes(
    contract_store: GraphStore,
) -> None:
    contract_store.write_document(make_doc("/in/a.pdf", [("", "a", ["werknemer", "alleen a"], [])]))
    contract_store.write_document(make_doc("/in/b.pdf", [("", "b", ["Werknemer"], [])]))
    shared = contract_store.query(
        "MATCH (c:Chunk)-[:MENTIONS]->(t:Term {name: 'werknemer'}) RETURN count(c) AS n"
    )
    assert shared == [{"n": 2}]
    assert contract_store.stats().node_count("Term") == 2
    assert contract_store.stats().node_count("Party") == 1  # "FNV" in both documents

    contract_store.delete_document("/in/a.pdf")
    assert contract_store.query("MATCH (t:Term) RETURN t.name AS name") == [{"name": "werknemer"}]
    assert contract_store.stats().node_count("Document") == 1
    contract_store.delete_document("/in/b.pdf")
    contract_store.delete_document("/in/never-written.pdf")  # nothing to do: no error
    assert all(v == 0 for v in contract_store.stats().nodes.values())
    assert all(v == 0 for v in contract_store.stats().relationships.values())


def test_refers_to_links_the_articles_first_chunk(contract_store: GraphStore) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    rows = contract_store.query(
        "MATCH (a:Chunk)-[r:REFERS_TO]->(b:Chunk) "
        "RETURN a.id AS source, b.id AS target, r.article AS article ORDER BY source, target"
    )
    assert rows == [
        {"source": "cao:00001", "target": "cao:00000", "article": "1"},
        {"source": "cao:00002", "target": "cao:00003", "article": "3"},
        {"source": "cao:00003", "target": "cao:00001", "article": "2"},
    ]
    nxt = contract_store.query(
        "MATCH (a:Chunk)-[:NEXT]->(b:Chunk) RETURN a.index AS a, b.index AS b ORDER BY a"
    )
    assert nxt == [{"a": 0, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 3}]


def test_amount_and_percentage_nodes_carry_their_values(contract_store: GraphStore) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    rows = contract_store.query(
        "MATCH (e) WHERE e:Amount OR e:Percentage "
        "RETURN labels(e) AS labels, e.name AS name, e.value AS value, e.currency AS currency "
        "ORDER BY name"
    )
    assert rows == [
        {"labels": ["Percentage"], "name": "3.5%", "value": 3.5, "currency": None},
        {"labels": ["Amount"], "name": "EUR 2450", "value": 2450.0, "currency": "EUR"},
    ]


def nameless_mention(chunk_id: str) -> MentionRow:
    """A mention whose key is null, which the database must refuse. MentionRow rules it out,
    so it is declared here, once, as the ill-typed row a bug upstream would hand the store."""
    row: dict[str, object] = {"chunk_id": chunk_id, "label": "Party", "name": None}
    return cast(MentionRow, row)


def test_a_failing_write_leaves_the_previous_version_intact(
    contract_store: GraphStore, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["contract_store"] == "memgraph-logic-on-falkordb":
        pytest.skip("runs statement by statement on FalkorDB: no transaction to roll back")
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    before = contract_store.stats()
    good = make_doc("/in/cao.pdf", CAO[:1])
    bad_mention = nameless_mention("cao:00000")
    broken = GraphDocument(
        good.document, good.chunks, good.next_pairs, (*good.mentions, bad_mention), ()
    )
    with pytest.raises(GraphError, match=r"rejected writing /in/cao\.pdf"):
        contract_store.write_document(broken)
    assert contract_store.stats() == before  # the delete of the old chunks was undone too
    assert orphans(contract_store) == (0, 0)


def test_query_returns_plain_python_values(contract_store: GraphStore) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO[:1]))
    (row,) = contract_store.query(
        "MATCH (d:Document)-[r:HAS_CHUNK]->(c:Chunk) "
        "RETURN d.pages AS pages, r, {a: [1, 2.5, null, true]} AS m, $p AS p",
        {"p": "x"},
    )
    assert row == {
        "pages": 2,
        "r": {"type": "HAS_CHUNK", "properties": {}},
        "m": {"a": [1, 2.5, None, True]},
        "p": "x",
    }
    assert type(row["m"]) is dict


def test_articles_merged_into_one_chunk_are_listed_and_referenced(
    contract_store: GraphStore,
) -> None:
    merged = "Artikel 3 Proeftijd\nKort.\nArtikel 4 Opzegging\nKort.\n4.1 Termijn\nEen maand.\n"
    doc = make_doc(
        "/in/short.txt",
        [
            ("Artikel 3 Proeftijd", merged, [], []),
            ("Artikel 5 Loon", "Artikel 5 Loon\n", [], ["4"]),
        ],
    )
    contract_store.write_document(doc)
    rows = contract_store.query(
        "MATCH (c:Chunk) RETURN c.index AS index, c.articles AS articles ORDER BY index"
    )
    assert rows == [{"index": 0, "articles": ["3", "4"]}, {"index": 1, "articles": ["5"]}]
    edges = contract_store.query(
        "MATCH (a:Chunk)-[r:REFERS_TO]->(b:Chunk) RETURN a.index AS a, r.article AS article, "
        "b.index AS b"
    )
    assert edges == [{"a": 1, "article": "4", "b": 0}]


# --- a long document, written in parts ----------------------------------------------------


def as_parts(doc: GraphDocument, size: int) -> list[GraphPart]:
    """`doc`'s rows as parts of `size` chunks (each with its NEXT pairs and mentions), and
    its references last, as `PartBuilder` makes them."""
    parts = []
    for start in range(0, len(doc.chunks), size):
        chunks = doc.chunks[start : start + size]
        ids = {c["id"] for c in chunks}
        parts.append(GraphPart(chunks, tuple(p for p in doc.next_pairs if p["target"] in ids),
                               tuple(m for m in doc.mentions if m["chunk_id"] in ids)))  # fmt: skip
    return [*parts, GraphPart(references=doc.references)]


def staged(store: GraphStore) -> object:
    return store.query("MATCH (s:Staging) RETURN count(s) AS n")[0]["n"]


def test_a_document_written_in_parts_is_the_document_written_whole(
    contract_store: GraphStore,
) -> None:
    doc = make_doc("/in/cao.pdf", CAO)
    contract_store.write_document_parts(doc.path, as_parts(doc, 1), lambda: doc.document)
    stats = contract_store.stats()
    assert (stats.nodes, stats.relationships) == (CAO_STATS_NODES, CAO_STATS_RELATIONSHIPS)
    rows = contract_store.query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(a:Chunk)-[r:REFERS_TO]->(b:Chunk) "
        "RETURN d.title AS title, a.id AS source, b.id AS target ORDER BY source"
    )
    assert rows == [{"title": "cao", "source": "cao:00001", "target": "cao:00000"},
                    {"title": "cao", "source": "cao:00002", "target": "cao:00003"},
                    {"title": "cao", "source": "cao:00003", "target": "cao:00001"}]  # fmt: skip
    assert (staged(contract_store), orphans(contract_store)) == (0, (0, 0))
    v2 = make_doc("/in/cao.pdf", CAO_V2, sha256="1" * 64)  # replaces it, in parts again
    contract_store.write_document_parts(v2.path, as_parts(v2, 1), lambda: v2.document)
    stats = contract_store.stats()
    assert (stats.nodes, stats.relationships) == (CAO_V2_STATS_NODES, CAO_V2_STATS_RELATIONSHIPS)
    assert (staged(contract_store), orphans(contract_store)) == (0, (0, 0))


def test_a_failing_part_leaves_the_previous_version_intact(contract_store: GraphStore) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    before = contract_store.stats()
    doc = make_doc("/in/cao.pdf", CAO[:2], sha256="1" * 64)
    bad_mention = nameless_mention("cao:00001")
    first, second, refs = as_parts(doc, 1)
    broken = GraphPart(second.chunks, second.next_pairs, (*second.mentions, bad_mention))
    with pytest.raises(GraphError, match=r"rejected writing /in/cao\.pdf"):
        contract_store.write_document_parts(doc.path, [first, broken, refs], lambda: doc.document)
    assert contract_store.stats() == before  # nothing staged is left, the old version is whole
    assert (staged(contract_store), orphans(contract_store)) == (0, (0, 0))
    sha = contract_store.query("MATCH (d:Document) RETURN d.sha256 AS sha")
    assert sha == [{"sha": "0" * 64}]


def test_a_producer_that_fails_between_parts_leaves_the_previous_version_intact(
    contract_store: GraphStore,
) -> None:
    contract_store.write_document(make_doc("/in/cao.pdf", CAO))
    before = contract_store.stats()
    doc = make_doc("/in/cao.pdf", CAO_V2, sha256="1" * 64)

    def parts() -> Iterator[GraphPart]:
        yield as_parts(doc, 1)[0]
        raise DocumentError(ErrorClass.PDF_CORRUPT, "cannot read page 9 of 9")

    with pytest.raises(DocumentError, match="page 9"):
        contract_store.write_document_parts(doc.path, parts(), lambda: doc.document)
    assert contract_store.stats() == before
    assert (staged(contract_store), orphans(contract_store)) == (0, (0, 0))


def test_rows_a_crashed_write_staged_are_removed_by_the_next_one(
    contract_store: GraphStore,
) -> None:
    contract_store.query(  # what a worker killed between two parts leaves behind
        "CREATE (:Staging {path: '/in/cao.pdf'})-[:HAS_CHUNK]->(:Chunk {id: 'cao:00000'})"
        "-[:MENTIONS]->(:Term {name: 'achtergebleven'})"
    )
    doc = make_doc("/in/cao.pdf", CAO)
    contract_store.write_document_parts(doc.path, as_parts(doc, 2), lambda: doc.document)
    stats = contract_store.stats()
    assert (stats.nodes, stats.relationships) == (CAO_STATS_NODES, CAO_STATS_RELATIONSHIPS)
    assert (staged(contract_store), orphans(contract_store)) == (0, (0, 0))
    contract_store.query(  # left behind again; deleting the document removes it too
        "CREATE (:Staging {path: '/in/cao.pdf'})-[:HAS_CHUNK]->(:Chunk {id: 'cao:00000'})"
    )
    contract_store.delete_document("/in/cao.pdf")
    assert all(v == 0 for v in contract_store.stats().nodes.values())
    assert staged(contract_store) == 0
