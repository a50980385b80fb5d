"""MemgraphGraphStore's transaction, retry, batching and error logic, on a fake Bolt session.

`FakeBolt` stands where `lexi_maint.graph.neo4jbolt.Neo4jSession` stands in production: it
records every call (begin, run, commit, rollback, auto-commit) and raises a scripted
`BoltError` when told to, so each failure path can be driven without a server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from lexi_maint.config.graph import MemgraphConfig, RetryPolicy
from lexi_maint.errors import GraphError
from lexi_maint.graph import cypher
from lexi_maint.graph.bolt import BoltError, FailureKind, Rows
from lexi_maint.graph.credentials import Credentials, password
from lexi_maint.graph.memgraph import MemgraphGraphStore, index_keys, unique_keys
from lexi_maint.graph.model import ENTITY_LABELS, NODE_LABELS, RELATIONSHIP_TYPES, GraphPart
from lexi_maint.pipeline.graphdoc import build_graph_document
from tests.unit.pipeline.test_graph_model import CAO, make_work

SECRET = "pa55-w0rd"
DOC = build_graph_document(make_work("/in/cao.pdf", CAO))
CONFLICT = BoltError(
    FailureKind.CONFLICT,
    "Cannot resolve conflicting transactions. You can retry this transaction when the "
    "conflicting transaction is finished",
)


def statement_names() -> dict[str, str]:
    """Every statement the store sends, by a short name for assertions."""
    names = {
        cypher.MERGE_DOCUMENT: "merge_document",
        cypher.STALE_ENTITIES: "stale",
        cypher.DELETE_OLD_CHUNKS: "delete_chunks",
        cypher.DELETE_DOCUMENT_NODE: "delete_document",
        cypher.STATS: "stats",
        cypher.MEMGRAPH_SHOW_INDEXES: "show_indexes",
        cypher.MEMGRAPH_SHOW_CONSTRAINTS: "show_constraints",
        cypher.stale_entities_of(cypher.STAGING): "stale_staged",
        cypher.delete_chunks_of(cypher.STAGING): "delete_staged",
        cypher.DELETE_STAGING_NODE: "delete_staging",
        cypher.MOVE_STAGED_CHUNKS: "move_staged",
    }
    names.update({step.text: step.rows for step in cypher.write_steps(cypher.MEMGRAPH)})
    staged = cypher.write_steps(cypher.MEMGRAPH, cypher.STAGING)
    for step in staged:  # the entity merges are the same statements
        names.setdefault(step.text, f"staged {step.rows}")
    for label in ENTITY_LABELS:
        names[cypher.delete_orphans(cypher.MEMGRAPH, label).text] = f"orphans:{label}"
    return names


NAMES = statement_names()


@dataclass
class FakeBolt:
    """A BoltSession that records calls and fails on cue (see `fail`)."""

    answers: Mapping[str, Rows] = field(default_factory=dict)  # statement name -> rows
    log: list[str] = field(default_factory=list)
    params: list[Mapping[str, object]] = field(default_factory=list)
    failures: list[tuple[str, BoltError]] = field(default_factory=list)
    rollback_error: BoltError | None = None
    closed: bool = False

    def fail(self, where: str, error: BoltError, times: int = 1) -> None:
        """Raise `error` the next `times` times a call named `where` is made
        ("begin", "commit", or a statement name such as "mentions_term")."""
        self.failures += [(where, error)] * times

    def _call(self, name: str) -> None:
        self.log.append(name)
        for i, (where, error) in enumerate(self.failures):
            if name.endswith(where):
                del self.failures[i]
                raise error

    def begin(self) -> FakeTx:
        self._call("begin")
        return FakeTx(self)

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        return self._statement("auto", statement, params)

    def _statement(self, prefix: str, statement: str, params: Mapping[str, object]) -> Rows:
        name = NAMES.get(statement, statement)
        self.params.append(params)
        self._call(f"{prefix} {name}")
        return list(self.answers.get(name, []))

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeTx:
    bolt: FakeBolt

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        return self.bolt._statement("tx", statement, params)

    def commit(self) -> None:
        self.bolt._call("commit")

    def rollback(self) -> None:
        self.bolt.log.append("rollback")
        if self.bolt.rollback_error is not None:
            raise self.bolt.rollback_error


CONFIG = MemgraphConfig(
    uri="bolt://db.internal:7687",
    batch_size=1000,
    retry=RetryPolicy(max_attempts=4, backoff_initial=0.05, backoff_max=1.0),
)


@dataclass
class Rig:
    bolt: FakeBolt
    store: MemgraphGraphStore
    sleeps: list[float]


def rig(
    config: MemgraphConfig = CONFIG,
    answers: Mapping[str, Rows] | None = None,
    draw: Callable[[], float] = lambda: 0.5,
) -> Rig:
    bolt = FakeBolt(answers=answers or {})
    sleeps: list[float] = []
    credentials = Credentials("lexi", password(SECRET, "test"))
    store = MemgraphGraphStore(bolt, config, credentials, sleep=sleeps.append, draw=draw)
    return Rig(bolt, store, sleeps)


ONE_TRY = [
    "begin",
    "tx merge_document",
    "tx stale",
    "tx delete_chunks",
    "tx chunks",
    *(f"tx {cypher.entities_parameter(label)}" for label in ENTITY_LABELS),
    "tx next",
    *(f"tx {cypher.mentions_parameter(label)}" for label in ENTITY_LABELS),
    "tx references",
]


# --- the write transaction ---------------------------------------------------------------


def test_a_document_is_replaced_in_one_transaction_nodes_before_relationships() -> None:
    r = rig(answers={"stale": [{"labels": ["Term"], "name": "oude term"}]})
    r.store.write_document(DOC)
    assert r.bolt.log == [*ONE_TRY, "tx orphans:Term", "commit"]
    assert r.sleeps == []
    assert r.bolt.params[-1] == {"names": ["oude term"]}
    assert r.bolt.params[0] == {"path": "/in/cao.pdf", "document": dict(DOC.document)}


def test_rows_go_out_in_batches_of_the_configured_size() -> None:
    r = rig(MemgraphConfig(batch_size=2))
    r.store.write_document(DOC)
    assert r.bolt.log.count("tx chunks") == 3  # 5 chunks
    assert r.bolt.log.count("tx next") == 2  # 4 pairs
    assert r.bolt.log.count("tx mentions_term") == 2  # 3 mentions
    sent = [p["chunks"] for p in r.bolt.params if "chunks" in p]
    assert all(isinstance(batch, list) for batch in sent)
    batches = [batch for batch in sent if isinstance(batch, list)]
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert [row for batch in batches for row in batch] == list(DOC.chunks)
    assert r.bolt.log[-1] == "commit" and r.bolt.log.count("begin") == 1


def test_a_conflict_at_commit_rolls_back_and_runs_the_whole_transaction_again() -> None:
    r = rig()
    r.bolt.fail("commit", CONFLICT)
    r.store.write_document(DOC)
    assert r.bolt.log == [*ONE_TRY, "commit", "rollback", *ONE_TRY, "commit"]
    assert r.sleeps == [pytest.approx(0.0375)]  # cap 0.05, drawn halfway between 0.025 and 0.05


def test_a_conflict_in_the_middle_starts_over_from_the_document_node() -> None:
    r = rig()
    r.bolt.fail("mentions_party", CONFLICT)
    r.store.write_document(DOC)
    broken_at = ONE_TRY.index("tx mentions_party") + 1
    assert r.bolt.log == [*ONE_TRY[:broken_at], "rollback", *ONE_TRY, "commit"]


@pytest.mark.parametrize(
    "kind", [FailureKind.CONFLICT, FailureKind.TRANSIENT, FailureKind.UNAVAILABLE]
)
def test_retries_are_bounded_and_back_off(kind: FailureKind) -> None:
    r = rig()
    r.bolt.fail("commit", BoltError(kind, "still failing"), times=10)
    with pytest.raises(GraphError) as caught:
        r.store.write_document(DOC)
    assert r.bolt.log.count("begin") == 4
    assert r.bolt.log.count("rollback") == 4
    assert r.sleeps == [pytest.approx(d) for d in (0.0375, 0.075, 0.15)]
    failing = (
        "is unreachable (writing /in/cao.pdf)"
        if kind is FailureKind.UNAVAILABLE
        else f"kept failing writing /in/cao.pdf ({kind.value})"
    )
    expected = f"Memgraph at bolt://db.internal:7687 {failing} after 4 attempts: still failing"
    assert str(caught.value) == expected


def test_an_unreachable_server_is_one_clear_error_naming_the_uri() -> None:
    r = rig()
    refused = BoltError(FailureKind.UNAVAILABLE, "ServiceUnavailable: Couldn't connect")
    r.bolt.fail("begin", refused, times=10)
    with pytest.raises(GraphError) as caught:
        r.store.write_document(DOC)
    assert str(caught.value) == (
        "Memgraph at bolt://db.internal:7687 is unreachable (writing /in/cao.pdf) after "
        "4 attempts: ServiceUnavailable: Couldn't connect"
    )
    assert r.bolt.log == ["begin"] * 4  # nothing was written, so nothing to roll back


def test_a_rejected_statement_is_rolled_back_and_not_retried() -> None:
    r = rig()
    r.bolt.fail("mentions_term", BoltError(FailureKind.REJECTED, "Can't merge null property"))
    with pytest.raises(GraphError) as caught:
        r.store.write_document(DOC)
    assert "commit" not in r.bolt.log
    assert r.bolt.log[-1] == "rollback" and r.bolt.log.count("begin") == 1
    assert r.sleeps == []
    assert str(caught.value) == (
        "Memgraph at bolt://db.internal:7687 rejected writing /in/cao.pdf: "
        "Can't merge null property"
    )


def test_rejected_credentials_are_not_retried_and_never_shown() -> None:
    r = rig()
    r.bolt.fail("begin", BoltError(FailureKind.AUTH, "Authentication failure"), times=5)
    with pytest.raises(GraphError) as caught:
        r.store.write_document(DOC)
    assert r.bolt.log == ["begin"]
    assert str(caught.value) == (
        "Memgraph at bolt://db.internal:7687 rejected user 'lexi' (writing /in/cao.pdf): "
        "Authentication failure"
    )


def test_the_password_is_redacted_from_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = rig()
    echo = BoltError(FailureKind.TRANSIENT, f"server said: bad token {SECRET}")
    r.bolt.fail("commit", echo, times=10)
    with pytest.raises(GraphError) as caught:
        r.store.write_document(DOC)
    assert SECRET not in str(caught.value)
    assert "[password redacted]" in str(caught.value)
    assert caplog.records, "the retries are logged"
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_a_failing_rollback_does_not_hide_the_original_error() -> None:
    r = rig()
    r.bolt.rollback_error = BoltError(FailureKind.UNAVAILABLE, "defunct connection")
    r.bolt.fail("chunks", BoltError(FailureKind.REJECTED, "bad chunk"))
    with pytest.raises(GraphError, match=r"rejected writing /in/cao\.pdf: bad chunk"):
        r.store.write_document(DOC)


def test_an_unexpected_answer_is_rolled_back_and_surfaces() -> None:
    r = rig(answers={"stale": [{"labels": "Term", "name": 5}]})
    with pytest.raises(GraphError, match="unexpected row from the stale-entity query"):
        r.store.write_document(DOC)
    assert r.bolt.log == ["begin", "tx merge_document", "tx stale", "rollback"]


def test_a_hint_is_given_for_known_server_settings() -> None:
    r = rig()
    r.bolt.fail("references", BoltError(FailureKind.REJECTED, "Properties on edges are disabled."))
    with pytest.raises(GraphError, match="--storage-properties-on-edges=true"):
        r.store.write_document(DOC)


def test_delete_document_removes_chunks_node_and_orphans_in_one_transaction() -> None:
    r = rig(answers={"stale": [{"labels": ["Party"], "name": "FNV"}]})
    r.store.delete_document("/in/cao.pdf")
    assert r.bolt.log == [
        "begin",
        "tx stale",
        "tx delete_chunks",
        "tx delete_document",
        "tx orphans:Party",
        "tx stale_staged",  # and whatever a write that died had staged for it
        "tx delete_staged",
        "tx delete_staging",
        "commit",
    ]
    assert r.bolt.params[:3] == [{"path": "/in/cao.pdf"}] * 3


def test_a_long_document_is_staged_part_by_part_then_swapped_in_one_transaction() -> None:
    r = rig(answers={"stale": [{"labels": ["Term"], "name": "oude term"}]})
    parts = [GraphPart(DOC.chunks[:1]), GraphPart(DOC.chunks[1:], DOC.next_pairs),
             GraphPart(references=DOC.references)]  # fmt: skip
    r.store.write_document_parts(DOC.path, parts, lambda: DOC.document)
    clear = ["begin", "tx stale_staged", "tx delete_staged", "tx delete_staging", "commit"]
    assert r.bolt.log == [
        *clear,
        "begin", "tx staged chunks", "commit",
        "begin", "tx staged chunks", "tx staged next", "commit",
        "begin", "tx staged references", "commit",
        "begin", "tx merge_document", "tx stale", "tx delete_chunks", "tx move_staged",
        "tx delete_staging", "tx orphans:Term", "commit",
    ]  # fmt: skip


def test_a_failing_part_is_rolled_back_and_the_staged_rows_removed() -> None:
    r = rig(answers={})
    r.bolt.fail("staged next", BoltError(FailureKind.REJECTED, "bad value"))
    parts = [GraphPart(DOC.chunks[:1]), GraphPart(DOC.chunks[1:], DOC.next_pairs)]
    with pytest.raises(GraphError):
        r.store.write_document_parts(DOC.path, parts, lambda: DOC.document)
    assert "tx merge_document" not in r.bolt.log  # the previous version was never touched
    assert "rollback" in r.bolt.log
    assert r.bolt.log[-5:] == ["begin", "tx stale_staged", "tx delete_staged",
                               "tx delete_staging", "commit"]  # fmt: skip


# --- schema, stats, query ----------------------------------------------------------------

INDEX_ROWS: Rows = [
    {"index type": "label+property", "label": "Document", "property": "path", "count": 3},
    {"index type": "label+property", "label": "Chunk", "property": ["id"], "count": 9},
    {"index type": "label", "label": "Term", "property": None, "count": 0},
    {"index type": "label_text (name: t)", "label": "Party", "property": ["name"], "count": 0},
]
CONSTRAINT_ROWS: Rows = [
    {"constraint type": "unique", "label": "Document", "properties": "path"},
    {"constraint type": "unique", "label": "Term", "properties": ["name"]},
    {"constraint type": "unique", "label": "Party", "properties": "name, address"},
    {"constraint type": "exists", "label": "Date", "properties": "name"},
]


def test_index_and_constraint_listings_of_memgraph_2_and_3_are_understood() -> None:
    assert index_keys(INDEX_ROWS) == {("Document", "path"), ("Chunk", "id")}
    assert unique_keys(CONSTRAINT_ROWS) == {("Document", "path"), ("Term", "name")}


def test_ensure_schema_creates_only_what_is_missing_outside_transactions() -> None:
    r = rig(answers={"show_indexes": INDEX_ROWS, "show_constraints": CONSTRAINT_ROWS})
    created = r.store.ensure_schema()
    assert created == (
        "index :Term(name)",
        "index :Party(name)",
        "index :Date(name)",
        "index :Amount(name)",
        "index :Percentage(name)",
        "unique :Party(name)",
        "unique :Date(name)",
        "unique :Amount(name)",
        "unique :Percentage(name)",
    )
    assert "begin" not in r.bolt.log  # Memgraph refuses DDL in explicit transactions
    assert r.bolt.log[:2] == ["auto show_indexes", "auto show_constraints"]
    assert r.bolt.log[2:4] == [
        "auto CREATE INDEX ON :Term(name)",
        "auto CREATE INDEX ON :Party(name)",
    ]
    assert r.bolt.log[-1] == "auto CREATE CONSTRAINT ON (n:Percentage) ASSERT n.name IS UNIQUE"


def test_ensure_schema_on_a_complete_schema_creates_nothing() -> None:
    indexes: Rows = [
        {"index type": "label+property", "label": label, "property": prop}
        for label, prop in cypher.INDEXES
    ]
    uniques: Rows = [
        {"constraint type": "unique", "label": label, "properties": [prop]}
        for label, prop in cypher.UNIQUE_KEYS
    ]
    r = rig(answers={"show_indexes": indexes, "show_constraints": uniques})
    assert r.store.ensure_schema() == ()
    assert r.bolt.log == ["auto show_indexes", "auto show_constraints"]


def test_an_index_made_meanwhile_by_another_init_is_not_an_error() -> None:
    r = rig()
    exists = BoltError(FailureKind.REJECTED, "Index already exists")
    r.bolt.fail("CREATE INDEX ON :Chunk(id)", exists)
    assert len(r.store.ensure_schema()) == len(cypher.INDEXES) + len(cypher.UNIQUE_KEYS)
    r.bolt.fail(
        "CREATE INDEX ON :Chunk(id)", BoltError(FailureKind.REJECTED, "Not enough privileges")
    )
    with pytest.raises(GraphError, match=r"rejected creating index :Chunk\(id\): Not enough"):
        r.store.ensure_schema()


def test_stats_and_query_run_auto_commit_and_retry_transient_errors() -> None:
    row: dict[str, object] = {cypher.stats_column(n): 1 for n in NODE_LABELS}
    row.update({cypher.stats_column(n): 2 for n in RELATIONSHIP_TYPES})
    r = rig(answers={"stats": [row], "RETURN $x AS x": [{"x": 7}]})
    r.bolt.fail("stats", BoltError(FailureKind.TRANSIENT, "busy"))
    stats = r.store.stats()
    assert stats.node_count("Term") == 1 and stats.relationship_count("NEXT") == 2
    assert r.bolt.log == ["auto stats", "auto stats"]
    assert r.store.query("RETURN $x AS x", {"x": 7}) == [{"x": 7}]
    assert r.bolt.params[-1] == {"x": 7}
    assert len(r.sleeps) == 1


def test_close_closes_the_session_and_swallows_a_dead_connection() -> None:
    r = rig()
    r.store.close()
    assert r.bolt.closed

    class Dead(FakeBolt):
        def close(self) -> None:
            raise BoltError(FailureKind.UNAVAILABLE, "gone")

    store = MemgraphGraphStore(Dead(), CONFIG, Credentials("", None))
    store.close()  # no exception


# --- read-only queries (`graph query` without --write) -----------------------------------


def test_a_read_only_query_runs_in_a_transaction_that_is_always_rolled_back() -> None:
    r = rig(answers={"MATCH (n) RETURN n": [{"n": 1}]})
    read_only = MemgraphGraphStore(r.bolt, CONFIG, Credentials("", None), read_only=True)
    assert read_only.query("MATCH (n) RETURN n") == [{"n": 1}]
    assert read_only.query("CREATE (x:Evil) RETURN x") == []
    assert r.bolt.log == [
        "begin", "tx MATCH (n) RETURN n", "rollback",
        "begin", "tx CREATE (x:Evil) RETURN x", "rollback",
    ]  # fmt: skip
    assert "commit" not in r.bolt.log


def test_a_writable_query_is_auto_committed() -> None:
    r = rig()
    r.store.query("CREATE (x:Wanted) RETURN x")
    assert r.bolt.log == ["auto CREATE (x:Wanted) RETURN x"]
