"""Abusive socket clients: idle, oversized, deeply nested, and too many at once.

None of them can block `status`, `submit` or `cancel` for root: requests have a read
timeout and a size limit, nesting is answered with an error, and connections of users
other than root are capped (per user and in all) while root's are never refused.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lexi_maint.daemon import server as server_module
from lexi_maint.daemon.client import Client
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.daemon.server import Server, listening_socket
from tests.integration.test_daemon_socket import Daemon

pytestmark = pytest.mark.integration


class GroupDaemon(Daemon):
    """The stand-in daemon with the socket group `nogroup`: user nobody may connect."""

    def serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        sock = listening_socket(self.path, "nogroup", {})
        server = self.loop.run_until_complete(
            Server(self.runs, frozenset({"cao_import", "slow"}), "nogroup").serve(sock)
        )
        self.ready.set()
        self.loop.run_until_complete(self._until_stopped())
        server.close()


@pytest.fixture()
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    import threading

    monkeypatch.setattr(server_module, "READ_TIMEOUT", 2.0)
    root = Path(tempfile.mkdtemp(prefix="lxsock", dir="/tmp"))
    root.chmod(0o755)  # reachable by an unprivileged client
    d = GroupDaemon(root / "api.sock")
    threads = [threading.Thread(target=d.serve), threading.Thread(target=d.execute)]
    for t in threads:
        t.start()
    assert d.ready.wait(10)
    yield d
    d.stop.set()
    for t in threads:
        t.join(10)


def ask(path: Path, payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(payload)
        return sock.recv(4096)


def test_deeply_nested_json_is_answered_with_an_error(daemon: Daemon) -> None:
    reply = ask(daemon.path, b"[" * 30_000 + b"]" * 30_000 + b"\n")
    assert b"nested too deeply" in reply
    assert Client(daemon.path).request({"op": "status"})["ok"]


def test_an_oversized_request_is_refused(daemon: Daemon) -> None:
    reply = ask(daemon.path, b'{"op": "' + b"x" * 100_000 + b'"}\n')
    assert b'"ok": false' in reply
    assert Client(daemon.path).request({"op": "status"})["ok"]


def test_an_idle_client_is_dropped_after_the_read_timeout(daemon: Daemon) -> None:
    started = time.monotonic()
    reply = ask(daemon.path, b"")
    assert b"no request within 2 s" in reply and time.monotonic() - started < 6


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_a_flood_of_connections_from_a_user_never_blocks_root(daemon: Daemon) -> None:
    script = (
        "import socket, sys, time\n"
        "socks = []\n"
        "for _ in range(200):\n"
        "    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)\n"
        "print('open', flush=True)\n"
        "refused = 0\n"
        "for s in socks:\n"
        "    s.settimeout(0.05)\n"
        "    try:\n"
        "        refused += b'too many connections' in s.recv(4096)\n"
        "    except OSError:\n"
        "        pass\n"
        "print(refused, flush=True)\n"
        "time.sleep(30)\n"
    )
    flood = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-c", script, str(daemon.path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert flood.stdout is not None
        assert flood.stdout.readline().strip() == "open"
        started = time.monotonic()
        assert Client(daemon.path).request({"op": "status"})["ok"]  # root, at once
        assert time.monotonic() - started < 2
        assert int(flood.stdout.readline()) > 0  # the per-user cap turned some away
    finally:
        flood.kill()
        flood.wait()


def test_the_caps_count_users_other_than_root() -> None:
    server = Server(RunQueue(), frozenset(), None)
    admitted = [server._admit(1000) for _ in range(server_module.MAX_CLIENTS_PER_UID + 1)]
    assert admitted == [True] * server_module.MAX_CLIENTS_PER_UID + [False]
    for uid in range(2000, 2000 + server_module.MAX_CLIENTS):
        server._admit(uid)
    assert not server._admit(3000)  # all together
