"""The shared Cypher: parameters, write steps, dialects, batching, stats parsing (pure)."""

from __future__ import annotations

import re

import pytest

from lexi_maint.errors import GraphError
from lexi_maint.graph import cypher
from lexi_maint.graph.model import ENTITY_LABELS, NODE_LABELS, RELATIONSHIP_TYPES
from lexi_maint.pipeline.graphdoc import build_graph_document
from tests.unit.pipeline.test_graph_model import CAO, Part, make_work

DOC = build_graph_document(make_work("/in/cao.pdf", CAO))


def test_write_parameters_hold_every_row_by_label() -> None:
    params = cypher.write_parameters(DOC)
    assert params["path"] == "/in/cao.pdf"
    assert params["document"] == DOC.document
    assert params["chunks"] == list(DOC.chunks)
    assert params["mentions_term"] == [
        {"chunk_id": "cao:00001", "label": "Term", "name": "werknemer"},
        {"chunk_id": "cao:00001", "label": "Term", "name": "werkgever"},
        {"chunk_id": "cao:00002", "label": "Term", "name": "werknemer"},
    ]
    assert params["mentions_party"] == [dict(m) for m in DOC.mentions_of("Party")]
    assert params["references"] == [dict(r) for r in DOC.references]


def test_entity_parameters_hold_each_name_once_with_its_values() -> None:
    params = cypher.write_parameters(DOC)
    assert params["entities_term"] == [{"name": "werknemer"}, {"name": "werkgever"}]
    assert params["entities_amount"] == [{"name": "EUR 2450", "value": 2450.0, "currency": "EUR"}]
    assert params["entities_percentage"] == [{"name": "3.5%", "value": 3.5}]
    assert params["entities_date"] == [{"name": "2024-01-01"}]


@pytest.mark.parametrize("dialect", [cypher.FALKORDB, cypher.MEMGRAPH], ids=lambda d: d.name)
def test_every_write_step_unwinds_its_own_rows_and_reads_only_known_parameters(
    dialect: cypher.Dialect,
) -> None:
    names = set(cypher.write_parameters(DOC))
    for step in cypher.write_steps(dialect):
        used = set(re.findall(r"\$(\w+)", step.text))
        assert f"UNWIND ${step.rows} AS" in step.text, step.text
        assert used <= {step.rows, "path"}, step.text
        assert step.rows in names


def test_write_steps_create_nodes_before_relationships() -> None:
    steps = [step.rows for step in cypher.write_steps(cypher.MEMGRAPH)]
    nodes = ["chunks", *(cypher.entities_parameter(label) for label in ENTITY_LABELS)]
    relationships = ["next", *(cypher.mentions_parameter(lb) for lb in ENTITY_LABELS)]
    assert steps == [*nodes, *relationships, "references"]


def test_dialects_differ_only_in_how_a_pattern_predicate_is_written() -> None:
    falkor = [step.text for step in cypher.write_steps(cypher.FALKORDB)]
    memgraph = [step.text for step in cypher.write_steps(cypher.MEMGRAPH)]
    pattern = "(:Document {path: $path})-[:HAS_CHUNK]->(a)"
    assert f"WHERE {pattern}" in falkor[-1]
    assert f"WHERE exists({pattern})" in memgraph[-1]
    unwrapped = [text.replace("exists(", "").replace("))", ")") for text in memgraph]
    assert unwrapped == falkor
    assert (
        "WHERE NOT exists((e)<-[:MENTIONS]-())"
        in cypher.delete_orphans(cypher.MEMGRAPH, "Term").text
    )
    assert "WHERE NOT (e)<-[:MENTIONS]-()" in cypher.delete_orphans(cypher.FALKORDB, "Term").text


def test_memgraph_statements_never_rely_on_a_bare_pattern_predicate() -> None:
    texts = [step.text for step in cypher.write_steps(cypher.MEMGRAPH)]
    texts += [cypher.delete_orphans(cypher.MEMGRAPH, label).text for label in ENTITY_LABELS]
    texts += [cypher.STALE_ENTITIES, cypher.DELETE_OLD_CHUNKS, cypher.DELETE_DOCUMENT_NODE]
    for text in texts:
        assert not re.search(r"WHERE (NOT )?\(", text), text
        assert "FOREACH" not in text and "CALL {" not in text


def test_batched_slices_rows_and_refuses_a_size_below_one() -> None:
    assert list(cypher.batched([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]
    assert list(cypher.batched([], 2)) == []
    assert list(cypher.batched([1, 2], 1000)) == [[1, 2]]
    with pytest.raises(ValueError, match="at least 1"):
        list(cypher.batched([1], 0))


def test_write_plan_sends_every_row_once_in_batches_of_the_configured_size() -> None:
    plan = cypher.write_plan(DOC, cypher.MEMGRAPH, batch_size=2)
    params = cypher.write_parameters(DOC)
    by_step: dict[str, list[object]] = {}
    for statement in plan:
        (rows_name,) = set(statement.params) - {"path"}
        rows = statement.params[rows_name]
        assert isinstance(rows, list) and 1 <= len(rows) <= 2
        assert statement.params["path"] == "/in/cao.pdf"
        by_step.setdefault(rows_name, []).extend(rows)
    non_empty = {name: rows for name, rows in params.items() if isinstance(rows, list) and rows}
    assert by_step == non_empty  # empty row lists send no statement at all
    chunks = params["chunks"]
    assert isinstance(chunks, list)
    assert [s.params.get("chunks") for s in plan[:3]] == [chunks[0:2], chunks[2:4], chunks[4:5]]


def test_write_plan_counts_for_the_sample_document() -> None:
    # 5 chunks; entities: 2 terms, 2 parties, 1 date, 1 amount, 1 percentage; 4 next pairs;
    # mentions: 3 term, 2 party, 1 date, 1 amount, 1 percentage; 2 references. In batches
    # of 2 that is 3 + (1+1+1+1+1) + 2 + (2+1+1+1+1) + 1 statements.
    plan = cypher.write_plan(DOC, cypher.MEMGRAPH, batch_size=2)
    assert len(plan) == 3 + 5 + 2 + 6 + 1
    assert len(cypher.write_plan(DOC, cypher.MEMGRAPH, batch_size=1000)) == 1 + 5 + 1 + 5 + 1


def test_stale_entities_groups_names_by_entity_label() -> None:
    rows: list[dict[str, object]] = [
        {"labels": ["Term"], "name": "loon"},
        {"labels": ["Party"], "name": "FNV"},
        {"labels": ["Term"], "name": "verlof"},
        {"labels": ["Foreign"], "name": "kept"},  # not ours: never deleted
    ]
    assert cypher.stale_entities(rows) == {"Term": ["loon", "verlof"], "Party": ["FNV"]}
    with pytest.raises(GraphError, match="unexpected row"):
        cypher.stale_entities([{"labels": "Term", "name": "x"}])


def test_orphan_plan_batches_names_per_label() -> None:
    plan = cypher.orphan_plan(cypher.MEMGRAPH, {"Party": ["FNV"], "Term": ["a", "b", "c"]}, 2)
    assert [(s.text.split("MATCH (e:")[1][:5], s.params) for s in plan] == [
        ("Term ", {"names": ["a", "b"]}),
        ("Term ", {"names": ["c"]}),
        ("Party", {"names": ["FNV"]}),
    ]
    assert cypher.orphan_plan(cypher.MEMGRAPH, {}, 2) == []


def test_parse_stats_reads_every_count_and_refuses_anything_else() -> None:
    row: dict[str, object] = {
        cypher.stats_column(n): i for i, n in enumerate([*NODE_LABELS, *RELATIONSHIP_TYPES])
    }
    stats = cypher.parse_stats([row])
    assert stats.nodes["Document"] == 0 and stats.nodes["Percentage"] == 6
    assert stats.relationships == {"HAS_CHUNK": 7, "NEXT": 8, "MENTIONS": 9, "REFERS_TO": 10}
    with pytest.raises(GraphError, match="2 rows"):
        cypher.parse_stats([row, row])
    with pytest.raises(GraphError, match="count of Chunk is not an integer: True"):
        cypher.parse_stats([{**row, "count_Chunk": True}])


def test_falkordb_single_query_wraps_each_statement_in_a_unit_subquery() -> None:
    query = cypher.falkordb_single_query(["MATCH (a) SET a.x = 1\n", "CREATE (b)"])
    assert query == "CALL {MATCH (a) SET a.x = 1\n}\nCALL {CREATE (b)\n}"
    for step in cypher.write_steps(cypher.FALKORDB):
        assert f"CALL {{{step.text.rstrip()}\n}}" in cypher.FALKORDB_WRITE_DOCUMENT


def test_indexes_cover_every_key_and_merge_keys_are_unique_keys() -> None:
    assert ("Document", "path") in cypher.INDEXES
    assert ("Chunk", "id") in cypher.INDEXES
    for label in ENTITY_LABELS:
        assert (label, "name") in cypher.INDEXES
        assert (label, "name") in cypher.UNIQUE_KEYS
    assert set(cypher.UNIQUE_KEYS) <= set(cypher.INDEXES)
    assert ("Chunk", "id") not in cypher.UNIQUE_KEYS  # chunks are created, never merged
    assert cypher.falkordb_create_index("Term", "name") == "CREATE INDEX FOR (n:Term) ON (n.name)"
    assert cypher.memgraph_create_index("Term", "name") == "CREATE INDEX ON :Term(name)"
    assert (
        cypher.memgraph_create_unique("Term", "name")
        == "CREATE CONSTRAINT ON (n:Term) ASSERT n.name IS UNIQUE"
    )


def test_a_document_without_analyses_still_writes_its_chunks() -> None:
    bare = build_graph_document(make_work("/in/x.txt", [Part("", "a", analysed=False)] * 3))
    plan = cypher.write_plan(bare, cypher.MEMGRAPH, batch_size=10)
    assert [set(s.params) - {"path"} for s in plan] == [{"chunks"}, {"next"}]


def test_chunk_property_keys_are_quoted_against_reserved_words() -> None:
    # `text` is reserved in Memgraph >= 2.17; `end` and `index` are keywords in Cypher
    for key in ("id", "index", "text", "heading", "start", "end", "articles"):
        assert f"`{key}`: row.`{key}`" in cypher.CREATE_CHUNKS.text
    assert not re.search(r"[{,]\s*text\s*:", cypher.FALKORDB_WRITE_DOCUMENT)
