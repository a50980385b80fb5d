"""Outages of real dependencies during `lexi-maint run`: they pause the run, never burn attempts.

FalkorDB SIGKILLed mid-run, FalkorDB's data disk full (a tiny tmpfs, root only), the model
API (tests/llm_server) answering 500 for less and for more than the outage budget, and the
model API down when the run starts.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace
from tests.llm_server import API_KEY, FakeLlmServer

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as w:
        yield w


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


def ledger_rows(ws: Workspace) -> dict[str, tuple[str, int, str | None]]:
    """(status, attempts, error_class) per document name, read straight from the ledger."""
    path = ws.state / "ledger.sqlite3"
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        rows = db.execute("SELECT path, status, attempts, error_class FROM documents").fetchall()
    return {Path(p).name: (s, a, e) for p, s, a, e in rows}


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition not met in time"
        time.sleep(0.05)


def start_run(ws: Workspace, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        lexi_argv(ws.config, "run", "cao_import", "--progress", "lines", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ws.root,
    )


def done_count(ws: Workspace) -> int:
    try:
        return sum(1 for s, _, _ in ledger_rows(ws).values() if s == "done")
    except sqlite3.Error:
        return 0


# -- the graph store ----------------------------------------------------------------------


def test_falkordb_killed_mid_run_is_restarted_and_the_run_finishes(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input, copies=12)]
    ws.write_config(workers=2, extra="outage_budget = 60\n")
    run = start_run(ws)
    wait_until(lambda: done_count(ws) >= 5)
    pid = int((ws.state / "falkordb" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, out + err
    assert done_count(ws) < len(names) or "restarted" in err  # the kill met the run
    assert "was down and is back" in err and "restarted" in err
    rows = ledger_rows(ws)
    assert {s for s, _, _ in rows.values()} == {"done"}
    assert {a for _, a, _ in rows.values()} == {1}  # no attempt burnt by the outage
    assert ws.graph_stats().node_count("Document") == len(names)


class TinyDisk:
    """A small tmpfs mounted on FalkorDB's data directory, filled up to `free` bytes."""

    def __init__(self, data: Path, size: str = "4m") -> None:
        self.data = data
        self.size = size
        self.filler = data / "filler"

    def __enter__(self) -> TinyDisk:
        self.data.mkdir(parents=True)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs",
                                  str(self.data)], capture_output=True, text=True)  # fmt: skip
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        return self

    def fill(self, leave: int) -> None:
        """Fill up to `leave` free bytes; the server writes too, so with `leave=0` the disk
        may be full before the filler's last block (ENOSPC then means done)."""
        st = os.statvfs(self.data)
        free = st.f_bavail * st.f_frsize
        remaining = max(free - leave, 0)
        with self.filler.open("ab", buffering=0) as handle:
            while remaining > 0:
                try:
                    remaining -= handle.write(b"\0" * min(remaining, 1 << 20))
                except OSError as exc:
                    if exc.errno != errno.ENOSPC or leave:
                        raise
                    return

    def free_up(self) -> None:
        self.filler.unlink(missing_ok=True)

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", "-l", str(self.data)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_graph_disk_pauses_the_run_until_space_is_freed(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input, copies=12)]
    ws.write_config(workers=2, extra="outage_budget = 120\n")
    with TinyDisk(ws.state / "falkordb" / "data") as disk:
        run = start_run(ws)
        wait_until(lambda: done_count(ws) >= 3)
        disk.fill(leave=0)  # something else fills the disk mid-run
        # the server cannot append to its log: the run pauses
        wait_until(lambda: any(e == "graph" for _, _, e in ledger_rows(ws).values()))
        time.sleep(1.0)
        paused_at = done_count(ws)
        assert paused_at < len(names)
        disk.free_up()
        out, err = run.communicate(timeout=300)
        stored = ws.graph_stats().node_count("Document")  # the data lives on the tmpfs
    assert run.returncode == 0, out + err
    assert "graph store is unavailable" in err
    rows = ledger_rows(ws)
    assert {s for s, _, _ in rows.values()} == {"done"}
    assert {a for _, a, _ in rows.values()} == {1}
    assert stored == len(names)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_graph_disk_full_past_the_budget_stops_the_run_with_status_3(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input, copies=12)]
    ws.write_config(workers=2, extra="outage_budget = 2\n")
    with TinyDisk(ws.state / "falkordb" / "data") as disk:
        run = start_run(ws)
        wait_until(lambda: done_count(ws) >= 3)
        disk.fill(leave=0)
        out, err = run.communicate(timeout=300)
        disk.free_up()
        assert run.returncode == 3, out + err
        assert "graph store unavailable since" in out and "bytes free" in out
        rows = ledger_rows(ws)
        assert not any(s == "failed" for s, _, _ in rows.values())
        assert any(s == "pending" for s, _, _ in rows.values())
        again = ws.cli("run", "cao_import")  # no --reprocess: the pending ones are taken
        stored = ws.graph_stats().node_count("Document")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {s for s, _, _ in ledger_rows(ws).values()} == {"done"}
    assert stored == len(names)


# -- the model API ------------------------------------------------------------------------


def configure_llm(ws: Workspace, base_url: str, budget: float) -> None:
    key_file = ws.root / "deepseek.key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    ws.write_config(
        workers=2,
        extra=(
            f"outage_budget = {budget}\n"
            f'\n[llm]\nprovider = "deepseek"\nbase_url = "{base_url}"\n'
            f'api_key_file = "{key_file}"\nbackoff_initial = 0.01\nbackoff_max = 0.05\n'
            f"max_retries = 2\nrequest_deadline = 10\n"
        ),
    )


def test_an_llm_500_storm_shorter_than_the_budget_costs_no_attempt(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input, copies=3)]
    with FakeLlmServer() as server:
        configure_llm(ws, server.url, budget=60)
        server.outage(3.0, from_first_request=True)
        result = ws.cli("run", "cao_import", "--progress", "lines")
        probes = server.probes
    assert result.returncode == 0, result.stdout + result.stderr
    assert "model API is unavailable" in result.stderr and "answers again" in result.stderr
    assert probes >= 2
    rows = ledger_rows(ws)
    assert len(rows) == len(names)
    assert {(s, a) for s, a, _ in rows.values()} == {("done", 1)}


def test_an_llm_500_storm_past_the_budget_stops_and_the_next_run_finishes(
    ws: Workspace,
) -> None:
    copy_samples(ws.input, copies=2)
    with FakeLlmServer() as server:
        configure_llm(ws, server.url, budget=2)
        server.outage(600.0)
        started = time.monotonic()
        stopped = ws.cli("run", "cao_import", "--progress", "lines")
        assert time.monotonic() - started < 60
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr
        assert "model API unavailable since" in stopped.stdout
        assert "HTTP 500" in stopped.stdout
        rows = ledger_rows(ws)
        assert {(s, a) for s, a, _ in rows.values()} == {("pending", 0)}
        server.outage(0.0)
        again = ws.cli("run", "cao_import")
    assert again.returncode == 0, again.stdout + again.stderr
    assert {(s, a) for s, a, _ in ledger_rows(ws).values()} == {("done", 1)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_llm_endpoint_down_at_the_start_waits_then_stops(ws: Workspace) -> None:
    copy_samples(ws.input)
    configure_llm(ws, f"http://127.0.0.1:{free_port()}", budget=1)
    stopped = ws.cli("run", "cao_import", "--progress", "lines")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert (
        "model API unavailable since" in stopped.stdout
        and "cannot reach 127.0.0.1" in stopped.stdout
    )
    rows = ledger_rows(ws)
    assert rows and {(s, a) for s, a, _ in rows.values()} == {("pending", 0)}


def test_an_llm_endpoint_that_comes_up_during_the_budget_is_waited_for(ws: Workspace) -> None:
    copy_samples(ws.input)
    port = free_port()
    configure_llm(ws, f"http://127.0.0.1:{port}", budget=60)
    run = start_run(ws)
    assert run.stderr is not None
    seen = run.stderr.readline()  # the run says it waits, before the server comes up
    assert "model API is unavailable" in seen, seen
    with FakeLlmServer(port=port):
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    assert "answers again" in err
    assert {(s, a) for s, a, _ in ledger_rows(ws).values()} == {("done", 1)}


# -- hostile answers ------------------------------------------------------------------------


def test_an_oversized_answer_is_refused_unread_and_fails_only_that_document(
    ws: Workspace,
) -> None:
    (ws.input / "cao.txt").write_text("Artikel 1 Loon\nHet loon is € 2.000,00.\n")
    with FakeLlmServer() as server:
        configure_llm(ws, server.url, budget=60)
        server.inject("content", times=10, content="x" * (9 * 2**20))  # over the 8 MiB default
        result = ws.cli("run", "cao_import", "--progress", "lines")
    assert result.returncode == 1, result.stdout + result.stderr
    [(status, _, error)] = ledger_rows(ws).values()
    assert (status, error) == ("failed", "llm_invalid_output")
    assert "too large" in result.stdout and "max_response_bytes" in result.stdout


def test_a_prompt_injected_flood_of_terms_is_trimmed_with_a_warning(ws: Workspace) -> None:
    (ws.input / "cao.txt").write_text("Artikel 1 Loon\nHet loon is € 2.000,00.\n")
    flood = json.dumps({"section_title": "Artikel 1", "defined_terms": [f"t{i}" for i in
                        range(20_000)], "dates": [], "amounts": [], "percentages": [],
                        "references": [], "parties": []})  # fmt: skip
    with FakeLlmServer() as server:
        configure_llm(ws, server.url, budget=60)
        server.inject("content", times=50, model="deepseek-reasoner", content=flood)
        result = ws.cli("run", "cao_import", "--progress", "lines")
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(ws.cli("status", "cao_import", "--json").stdout)
    [doc] = status["documents"]
    assert any("trimmed" in w and "20000 items" in w for w in doc["warnings"])
    chunks = int(doc["chunks"])
    assert ws.graph_stats().node_count("Term") <= 200 * chunks


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_state_disk_is_one_line_and_status_3_and_loses_nothing(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input)]
    ws.write_config(extra="outage_budget = 2\n")
    first = ws.cli("run", "cao_import")
    assert first.returncode == 0, first.stdout + first.stderr
    (ws.input / "new.txt").write_text("Artikel 1 Loon\nHet loon is € 2.000,00.\n")
    full = ws.root / "full"
    full.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(full)], check=True)
    try:
        shutil.copytree(ws.state, full / "state")  # the state, moved onto a disk that fills
        filler = full / "filler"
        st = os.statvfs(full)
        filler.write_bytes(b"\0" * (st.f_bavail * st.f_frsize))
        ws.config.write_text(ws.config.read_text().replace(str(ws.state), str(full / "state")))
        result = ws.cli("run", "cao_import")
        assert result.returncode == 3, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("lexi-maint:")]
        assert len(errors) == 1
        filler.unlink()
        again = ws.cli("run", "cao_import")
        assert again.returncode == 0, again.stdout + again.stderr
        rows = json.loads(ws.cli("status", "cao_import", "--json").stdout)["documents"]
        assert sorted(Path(d["path"]).name for d in rows) == sorted([*names, "new.txt"])
        assert {d["status"] for d in rows} == {"done"}
    finally:
        subprocess.run(["umount", "-l", str(full)], check=False)
