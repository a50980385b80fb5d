"""`lexi-maint graph serve`'s loop with a fake server: ready once started, a clean stop when
told, and a failure status when the server exits on its own or hangs (so systemd restarts
the unit). The real server's hang: integration/test_falkordb_store.py."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from lexi_maint.graph.serve import HUNG_STATUS, serve_foreground


class FakeServer:
    def __init__(self, exit_after: int | None = None, hung_after: int | None = None) -> None:
        self.exit_after = exit_after  # polls until it "exits" with status 1
        self.hung_after = hung_after  # hang checks until it is "hung"
        self.polls = 0
        self.checks = 0
        self.events: list[str] = []

    @property
    def pid(self) -> int | None:
        return 4242

    @property
    def socket_path(self) -> Path:
        return Path("/state/falkordb/falkordb.sock")

    def exited(self) -> int | None:
        self.polls += 1
        return 1 if self.exit_after is not None and self.polls >= self.exit_after else None

    def hung(self) -> bool:
        self.checks += 1
        return self.hung_after is not None and self.checks >= self.hung_after

    def kill(self) -> None:
        self.events.append("killed")

    def __enter__(self) -> FakeServer:
        self.events.append("started")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.events.append("stopped")


def test_ready_once_it_answers_and_a_clean_stop_when_told() -> None:
    server = FakeServer()
    stop = threading.Event()
    said: list[str] = []

    def ready(status: str) -> None:
        said.append(status)
        stop.set()  # systemd's SIGTERM, right after READY=1

    assert serve_foreground(Path("/state"), ready, stop, lambda _: server, poll=0.001) is None
    assert said == ["FalkorDB server pid 4242 answers on /state/falkordb/falkordb.sock"]
    assert server.events == ["started", "stopped"]


def test_a_server_that_exits_on_its_own_ends_serve_with_its_status() -> None:
    server = FakeServer(exit_after=3)
    status = serve_foreground(
        Path("/state"), lambda _: None, threading.Event(), lambda _: server, poll=0.001
    )
    assert status == 1 and server.polls == 3
    assert server.events == ["started", "stopped"]


def test_a_server_that_hangs_is_killed_and_ends_serve_with_a_failure() -> None:
    server = FakeServer(hung_after=2)
    status = serve_foreground(
        Path("/state"), lambda _: None, threading.Event(), lambda _: server, 0.001, 0.0
    )
    assert status == HUNG_STATUS and server.checks == 2
    assert server.events == ["started", "killed", "stopped"]


def test_a_working_server_is_checked_for_a_hang_now_and_then() -> None:
    server = FakeServer(exit_after=50)
    serve_foreground(Path("/state"), lambda _: None, threading.Event(), lambda _: server, 0.001, 60)
    assert server.checks == 0  # 50 polls of 1 ms: under a minute, no PING sent
