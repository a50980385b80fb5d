"""The daemon's socket protocol end to end on this host: real Unix socket, real asyncio
server, real client; a stand-in executor thread plays the runs (systemd is the VM tier's)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lexi_maint.daemon.client import Client, submit_and_wait
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.daemon.server import Server, listening_socket
from lexi_maint.errors import DaemonRefused, DaemonUnavailable
from lexi_maint.lifecycle.machine import Phase

pytestmark = pytest.mark.integration


class Daemon:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs = RunQueue()
        self.loop = asyncio.new_event_loop()
        self.stop = threading.Event()
        self.release = threading.Event()
        self.ready = threading.Event()

    def serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        sock = listening_socket(self.path, None, {})
        server = self.loop.run_until_complete(
            Server(self.runs, frozenset({"cao_import", "slow"}), None).serve(sock)
        )
        self.ready.set()
        self.loop.run_until_complete(self._until_stopped())
        server.close()

    async def _until_stopped(self) -> None:
        while not self.stop.is_set():
            await asyncio.sleep(0.02)

    def execute(self) -> None:
        while not self.stop.is_set():
            taken = self.runs.take(timeout=0.05)
            if taken is None:
                continue
            record, cancel = taken
            self.runs.publish(record.run_id, {"event": "phase", "phase": "run", "message": "go"})
            for n in (1, 2):
                self.runs.publish(record.run_id, {"event": "line", "line": f"[{n}/2] ✅ d{n}"})
            if record.job == "slow":
                while not cancel.is_set() and not self.release.is_set():
                    time.sleep(0.02)
            phase = Phase.CANCELLED if cancel.is_set() else Phase.DONE
            self.runs.update(record.run_id, phase=phase, exit_code=4 if cancel.is_set() else 0,
                             message=phase.value, finished_at=time.time())  # fmt: skip


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "run" / "api.sock")
    threads = [threading.Thread(target=d.serve), threading.Thread(target=d.execute)]
    for t in threads:
        t.start()
    assert d.ready.wait(10)
    yield d
    d.stop.set()
    for t in threads:
        t.join(10)


def test_socket_is_0660(daemon: Daemon) -> None:
    assert oct(os.stat(daemon.path).st_mode & 0o777) == "0o660"


def test_submit_wait_streams_lines_and_returns_the_run(daemon: Daemon) -> None:
    lines: list[str] = []
    run = submit_and_wait(Client(daemon.path), "cao_import", False, lines.append)
    assert run["phase"] == "done" and run["exit_code"] == 0
    assert lines[0].startswith("submitted run cao_import-")
    assert "[1/2] ✅ d1" in lines and "[2/2] ✅ d2" in lines


def test_resubmitting_a_running_job_returns_the_same_run(daemon: Daemon) -> None:
    client = Client(daemon.path)
    first = client.request({"op": "submit", "job": "slow"})
    second = client.request({"op": "submit", "job": "slow"})
    assert first["created"] is True and second["created"] is False
    assert first["run"]["run_id"] == second["run"]["run_id"]
    listed = client.request({"op": "list"})["runs"]
    assert [r["run_id"] for r in listed] == [first["run"]["run_id"]]
    cancelled = client.request({"op": "cancel", "run": first["run"]["run_id"]})
    assert cancelled["ok"]
    deadline = time.monotonic() + 10
    run_id = first["run"]["run_id"]
    while (run := daemon.runs.get(run_id)) is not None and run.phase is not Phase.CANCELLED:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert run is not None, "the cancelled run left the queue"


def test_unknown_job_and_unknown_run_are_refused(daemon: Daemon) -> None:
    client = Client(daemon.path)
    with pytest.raises(DaemonRefused, match="no job named 'nope'"):
        client.request({"op": "submit", "job": "nope"})
    with pytest.raises(DaemonRefused, match="no run 'r-x'"):
        client.request({"op": "cancel", "run": "r-x"})


def test_no_daemon_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnavailable, match="cannot reach lexi-maintd"):
        Client(tmp_path / "none.sock").request({"op": "status"})


def test_leftover_killer_stops_real_processes_and_ignores_zombies(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from lexi_maint.config.service import ProcessMatcher
    from lexi_maint.lifecycle.procs import LeftoverKiller

    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready', flush=True); time.sleep(600)"
    )
    polite = "import time; print('ready', flush=True); time.sleep(600)"

    def start(code: str, tag: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", code, tag], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        return child  # its handlers are in place: no sleep that load can outrun

    workers = [start(stubborn, "lexi-test-worker"), start(polite, "lexi-test-worker")]
    decoy = start(polite, "lexi-test-decoy")
    matcher = ProcessMatcher(exe=None, cmdline_contains="lexi-test-worker", cwd=str(tmp_path))
    report = LeftoverKiller([matcher], grace=1.0).stop("")
    try:
        assert sorted(report.found) == sorted(w.pid for w in workers)
        assert report.killed == (workers[0].pid,)  # ignored SIGTERM
        assert report.terminated == (workers[1].pid,)
        for worker in workers:  # zombies until reaped here: the killer did not wait for that
            assert worker.wait(5) in (-signal.SIGKILL, -signal.SIGTERM)
        assert decoy.poll() is None, "a process no matcher names was killed"
    finally:
        decoy.kill()
        decoy.wait()
