"""The embedded FalkorDB server in the foreground: `lexi-maint graph serve`.

A daemon run starts this as the ExecStart of its graph unit (systemd.properties
`graph_properties`): the server's memory is then the graph unit's, under its own cap,
apart from the job unit's. It owns the server like a run does (the lock, the stale-server
takeover, the log), says `ready` once the server answers PING, and returns when told to
stop (SIGTERM from systemd: the server is stopped cleanly) or when the server exits on its
own (a failure status, so that systemd's Restart=on-failure starts it again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from lexi_maint.graph.falkordb import FalkorServer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def serve_foreground(
    state_dir: Path,
    ready: Callable[[str], object],
    stop: threading.Event,
    server: FalkorServer | None = None,
) -> int | None:
    """Run the server until `stop` is set (None) or it exits on its own (its status)."""
    server = server if server is not None else FalkorServer(state_dir)
    with server:
        ready(f"FalkorDB server pid {server.pid} answers on {server.socket_path}")
        while not stop.wait(POLL_SECONDS):
            status = server.exited()
            if status is not None:
                log.error("FalkorDB server pid %s exited with status %s (redis log: %s)",
                          server.pid, status, server.layout.log)  # fmt: skip
                return status
    return None
