"""The neo4j-driver side of the Memgraph adapter: error classes, values, driver options.

Server errors are built with `Neo4jError._hydrate_neo4j`, which is how the driver itself
turns a Bolt FAILURE message (code + message) into an exception; the codes and messages are
the ones Memgraph sends (conflicts were ClientError before Memgraph 2.12, TransientError
since).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import neo4j
import pytest
from neo4j import exceptions as neo4j_errors
from neo4j.graph import Graph, Node
from neo4j.graph import Path as GraphPath
from neo4j.time import Date, DateTime, Duration

from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import GraphError
from lexi_maint.graph.bolt import BoltError, FailureKind
from lexi_maint.graph.credentials import Credentials, password
from lexi_maint.graph.neo4jbolt import (
    Neo4jSession,
    auth_token,
    classify,
    describe,
    driver_options,
    open_session,
    plain,
)

SECRET = "pa55-w0rd"
CREDENTIALS = Credentials("lexi", password(SECRET, "test"))


def server_error(code: str, message: str) -> neo4j_errors.Neo4jError:
    return neo4j_errors.Neo4jError._hydrate_neo4j(code=code, message=message)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            server_error(
                "Memgraph.TransientError.MemgraphError.MemgraphError",
                "Cannot resolve conflicting transactions. You can retry this transaction "
                "when the conflicting transaction is finished",
            ),
            FailureKind.CONFLICT,
        ),
        (
            server_error(
                "Memgraph.ClientError.MemgraphError.MemgraphError",
                "Cannot resolve conflicting transactions. You can retry this transaction "
                "when the conflicting transaction is finished",
            ),
            FailureKind.CONFLICT,  # Memgraph < 2.12
        ),
        (
            server_error(
                "Memgraph.ClientError.MemgraphError.MemgraphError",
                "Unable to commit due to serialization error.",
            ),
            FailureKind.CONFLICT,
        ),
        (
            server_error(
                "Memgraph.ClientError.MemgraphError.MemgraphError",
                "Unable to commit due to unique constraint violation on :Term(name)",
            ),
            FailureKind.CONFLICT,  # two workers MERGEd the same new entity
        ),
        (
            server_error("Memgraph.TransientError.MemgraphError.MemgraphError", "Try later"),
            FailureKind.TRANSIENT,
        ),
        (
            server_error(
                "Memgraph.TransientError.MemgraphError.MemgraphError",
                "Transaction was asked to abort because of transaction timeout.",
            ),
            FailureKind.REJECTED,  # the same work would time out again
        ),
        (
            server_error(
                "Memgraph.ClientError.MemgraphError.MemgraphError",
                "Memory limit exceeded!",
            ),
            FailureKind.REJECTED,
        ),
        (
            server_error("Memgraph.ClientError.Security.Unauthenticated", "Authentication failure"),
            FailureKind.AUTH,
        ),
        (
            server_error("Neo.ClientError.Security.Unauthorized", "The client is unauthorized"),
            FailureKind.AUTH,
        ),
        (
            server_error(
                "Memgraph.ClientError.MemgraphError.MemgraphError", "line 1:10 mismatched input"
            ),
            FailureKind.REJECTED,
        ),
        (
            server_error("Memgraph.DatabaseError.MemgraphError.MemgraphError", "boom"),
            FailureKind.REJECTED,
        ),
        (neo4j_errors.ServiceUnavailable("Couldn't connect"), FailureKind.UNAVAILABLE),
        (neo4j_errors.SessionExpired("gone"), FailureKind.UNAVAILABLE),
        (neo4j_errors.IncompleteCommit("lost during commit"), FailureKind.UNAVAILABLE),
        (ConnectionResetError(104, "reset"), FailureKind.UNAVAILABLE),
        (neo4j_errors.TransactionError("closed"), FailureKind.REJECTED),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_classify(error: Exception, kind: FailureKind) -> None:
    assert classify(error) is kind


def test_describe_prefers_the_servers_own_words() -> None:
    error = server_error("Memgraph.ClientError.MemgraphError.MemgraphError", "bad input")
    assert describe(error) == "bad input"
    assert describe(neo4j_errors.ServiceUnavailable("no route")) == "ServiceUnavailable: no route"


def test_plain_turns_graph_values_into_plain_python() -> None:
    graph = Graph()
    a = Node(graph, "4:x:1", 1, ["Term", "Entity"], {"name": "loon"})
    b = Node(graph, "4:x:2", 2, ["Chunk"], {"id": "c1", "index": 0})
    rel_type = graph.relationship_type("MENTIONS")
    rel = rel_type(graph, "5:x:9", 9, {"weight": 1.5})
    rel._start_node, rel._end_node = b, a
    value = {
        "n": a,
        "r": rel,
        "p": GraphPath(b, rel),
        "when": [Date(2024, 1, 1), DateTime(2024, 1, 1, 12, 0, 0)],
        "d": Duration(days=2),
        "nested": ({"x": [1, None, True]},),
    }
    assert plain(value) == {
        "n": {"labels": ["Entity", "Term"], "properties": {"name": "loon"}},
        "r": {"type": "MENTIONS", "properties": {"weight": 1.5}},
        "p": {
            "nodes": [
                {"labels": ["Chunk"], "properties": {"id": "c1", "index": 0}},
                {"labels": ["Entity", "Term"], "properties": {"name": "loon"}},
            ],
            "edges": [{"type": "MENTIONS", "properties": {"weight": 1.5}}],
        },
        "when": ["2024-01-01", "2024-01-01T12:00:00.000000000"],
        "d": "P2D",
        "nested": [{"x": [1, None, True]}],
    }


def test_driver_options_without_tls() -> None:
    options = driver_options(MemgraphConfig(connect_timeout=3.0))
    assert options["encrypted"] is False
    assert "trusted_certificates" not in options
    assert options["connection_timeout"] == 3.0
    assert options["connection_acquisition_timeout"] == 4.0
    assert options["max_transaction_retry_time"] == 0.0
    assert str(options["user_agent"]).startswith("lexi-maint/")


def test_driver_options_with_tls_trust_the_system_or_the_given_ca() -> None:
    system = driver_options(MemgraphConfig(tls=True))
    assert system["encrypted"] is True
    assert isinstance(system["trusted_certificates"], neo4j.TrustSystemCAs)
    custom = driver_options(MemgraphConfig(tls=True, tls_ca_file=Path("/etc/ca.pem")))
    assert isinstance(custom["trusted_certificates"], neo4j.TrustCustomCAs)
    assert custom["trusted_certificates"].certs == ("/etc/ca.pem",)


def test_auth_token() -> None:
    assert auth_token(CREDENTIALS) == ("lexi", SECRET)
    assert auth_token(Credentials("reader", None)) == ("reader", "")
    assert auth_token(Credentials("", None)) is None


# --- the session wrapper, on a stand-in for the driver's session -----------------------


@dataclass
class StandInResult:
    records: list[dict[str, object]]

    def __iter__(self) -> Iterator[StandInRecord]:
        return iter(StandInRecord(r) for r in self.records)


@dataclass
class StandInRecord:
    values: dict[str, object]

    def keys(self) -> list[str]:
        return list(self.values)

    def __iter__(self) -> Iterator[object]:  # like neo4j.Record: a tuple of values
        return iter(self.values.values())


@dataclass
class StandInTx:
    error: Exception | None = None
    closed: bool = False

    def run(self, statement: str, params: Mapping[str, object]) -> StandInResult:
        if self.error is not None:
            raise self.error
        return StandInResult([{"statement": statement, **params}])

    def commit(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


@dataclass
class StandInSession:
    tx: StandInTx = field(default_factory=StandInTx)
    timeouts: list[float | None] = field(default_factory=list)
    closed: bool = False

    def begin_transaction(self, timeout: float | None = None) -> StandInTx:
        self.timeouts.append(timeout)
        return self.tx

    def run(self, query: neo4j.Query, params: Mapping[str, object]) -> StandInResult:
        self.timeouts.append(query.timeout)
        if self.tx.error is not None:
            raise self.tx.error
        return StandInResult([{"text": query.text, **params}])

    def close(self) -> None:
        self.closed = True


@dataclass
class StandInDriver:
    inner: StandInSession = field(default_factory=StandInSession)
    opened: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    def session(self, **kwargs: Any) -> StandInSession:
        self.opened.append(kwargs)
        return self.inner

    def close(self) -> None:
        self.closed = True


def wrapped(config: MemgraphConfig, driver: StandInDriver) -> Neo4jSession:
    return Neo4jSession(driver, config, CREDENTIALS)


def test_the_session_opens_the_configured_database_for_writing() -> None:
    default = StandInDriver()
    wrapped(MemgraphConfig(), default)
    named = StandInDriver()
    wrapped(MemgraphConfig(database="lexi"), named)
    assert default.opened == [{"database": None, "default_access_mode": neo4j.WRITE_ACCESS}]
    assert named.opened[0]["database"] == "lexi"


def test_statements_return_plain_rows_and_carry_the_transaction_timeout() -> None:
    driver = StandInDriver()
    session = wrapped(MemgraphConfig(transaction_timeout=42.0), driver)
    tx = session.begin()
    assert tx.run("RETURN $x", {"x": 1}) == [{"statement": "RETURN $x", "x": 1}]
    tx.commit()
    tx.rollback()
    assert driver.inner.tx.closed
    assert session.run("RETURN 2", {}) == [{"text": "RETURN 2"}]
    assert driver.inner.timeouts == [42.0, 42.0]
    session.close()
    assert driver.inner.closed and driver.closed


def test_driver_errors_leave_as_bolt_errors_without_the_password() -> None:
    driver = StandInDriver()
    driver.inner.tx.error = server_error(
        "Memgraph.ClientError.MemgraphError.MemgraphError", f"no user lexi with password {SECRET}"
    )
    session = wrapped(MemgraphConfig(), driver)
    tx = session.begin()
    for call in (lambda: tx.run("RETURN 1", {}), tx.commit, lambda: session.run("RETURN 1", {})):
        with pytest.raises(BoltError) as caught:
            call()
        assert caught.value.kind is FailureKind.REJECTED
        assert SECRET not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_open_session_refuses_a_uri_the_driver_cannot_use() -> None:
    refused = MemgraphConfig(uri="bolt+s://db:7687", tls=True)  # TLS twice: driver refuses
    with pytest.raises(GraphError, match="Memgraph at bolt\\+s://db:7687: cannot set up") as caught:
        open_session(refused, CREDENTIALS)
    assert SECRET not in str(caught.value)
    session = open_session(MemgraphConfig(uri="bolt://127.0.0.1:1"), CREDENTIALS)  # lazy
    session.close()
