"""The embedded FalkorDB server in the foreground: `lexi-maint graph serve`.

A daemon run starts this as the ExecStart of its graph unit (systemd.properties
`graph_properties`): the server's memory is then the graph unit's, under its own cap,
apart from the job unit's. It owns the server like a run does (the lock, the stale-server
takeover, the log), says `ready` once the server answers PING, and returns when told to
stop (SIGTERM from systemd: the server is stopped cleanly) or when the server exits on its
own or hangs (a failure status, so that systemd's Restart=on-failure starts it again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from lexi_maint.graph.falkorserver import FalkorServer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
HUNG_CHECK_SECONDS = 5.0  # how often the running server is PINGed (`FalkorServer.hung`)
HUNG_STATUS = -9  # returned for a server killed as hung: systemd then restarts the unit


class Served(Protocol):
    """What `serve_foreground` needs of the server (FalkorServer; a fake in unit tests)."""

    @property
    def pid(self) -> int | None: ...
    @property
    def socket_path(self) -> Path: ...
    def exited(self) -> int | None: ...
    def hung(self) -> bool: ...
    def kill(self) -> None: ...


def serve_foreground(
    state_dir: Path,
    ready: Callable[[str], object],
    stop: threading.Event,
    make_server: Callable[[Path], AbstractContextManager[Served]] = FalkorServer,
    poll: float = POLL_SECONDS,
    hung_check: float = HUNG_CHECK_SECONDS,
) -> int | None:
    """Run the server until `stop` is set (None), or until it exits on its own (its status)
    or hangs (`HUNG_STATUS`, after killing it)."""
    with make_server(state_dir) as server:
        ready(f"FalkorDB server pid {server.pid} answers on {server.socket_path}")
        checked = time.monotonic()
        while not stop.wait(poll):
            status = server.exited()
            if status is not None:
                log.error("FalkorDB server pid %s exited with status %s (see %s)",
                          server.pid, status, state_dir / "falkordb" / "redis.log")  # fmt: skip
                return status
            if time.monotonic() - checked >= hung_check:
                checked = time.monotonic()
                if server.hung():
                    log.error("FalkorDB server pid %s answers nothing and uses no CPU: hung;"
                              " killing it (see %s)", server.pid,
                              state_dir / "falkordb" / "redis.log")  # fmt: skip
                    server.kill()
                    return HUNG_STATUS
    return None
