"""The daemon's Unix socket: socket activation or self-bound, peer checks, JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lexi_maint.daemon.api import (
    MAX_LINE,
    Cancel,
    ListRuns,
    Status,
    Submit,
    encode,
    parse_request,
)
from lexi_maint.daemon.peer import Peer, allowed, group_id, peer_of
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.errors import ApiError

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3
READ_TIMEOUT = 10.0  # seconds a client has to send its request line
MAX_CLIENTS = 64  # connections from users other than root, all together
MAX_CLIENTS_PER_UID = 8  # ... and from one of them; root is never counted nor refused


def listening_socket(path: Path, group: str | None, environ: Mapping[str, str]) -> socket.socket:
    """The socket systemd passed (LISTEN_FDS), else one bound here with mode 0660."""
    if environ.get("LISTEN_PID") == str(os.getpid()) and environ.get("LISTEN_FDS") == "1":
        sock = socket.socket(fileno=SD_LISTEN_FDS_START)
        log.info("using the socket passed by systemd: %s", sock.getsockname())
        return sock
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    gid = group_id(group)
    os.chown(path, 0 if os.geteuid() == 0 else -1, gid if gid is not None else -1)
    os.chmod(path, 0o660)
    sock.listen(socket.SOMAXCONN)  # a flood of connections must not crowd out root's
    log.info("listening on %s (mode 0660, group %s)", path, group if gid is not None else "-")
    return sock


class Server:
    def __init__(self, runs: RunQueue, jobs: frozenset[str], group: str | None) -> None:
        self._runs = runs
        self._jobs = jobs
        self._group_name = group
        self._gid = group_id(group)
        self._clients: dict[int, int] = {}  # open connections per non-root uid
        if group is not None and self._gid is None:
            log.warning("group %r does not exist: only root may use the socket", group)

    async def serve(self, sock: socket.socket) -> asyncio.AbstractServer:
        sock.setblocking(False)
        # asyncio listens again with its own backlog (100): keep the kernel's maximum, so a
        # flood of connections waiting to be refused cannot make root's connect() fail
        return await asyncio.start_unix_server(
            self._handle, sock=sock, limit=MAX_LINE + 1, backlog=socket.SOMAXCONN
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer.get_extra_info("socket"))
        counted = peer.uid != 0
        try:
            if counted and not self._admit(peer.uid):
                log.warning("refused a connection from uid %d (pid %d): too many open", peer.uid,
                            peer.pid)  # fmt: skip
                await _send(writer, _error("too many connections; try again later"))
                return
            await self._serve_one(peer, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if counted and self._clients.get(peer.uid, 0) > 0:
                self._clients[peer.uid] -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _admit(self, uid: int) -> bool:
        """Count a non-root connection, or refuse it past the caps (root is never refused)."""
        if sum(self._clients.values()) >= MAX_CLIENTS:
            return False
        if self._clients.get(uid, 0) >= MAX_CLIENTS_PER_UID:
            return False
        self._clients[uid] = self._clients.get(uid, 0) + 1
        return True

    async def _serve_one(
        self, peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if not allowed(peer, self._gid):
            log.warning("refused uid %d (pid %d): not root and not in group %s",
                        peer.uid, peer.pid, self._group_name)  # fmt: skip
            group = self._group_name or "(none configured)"
            await _send(writer, _error(f"permission denied: uid {peer.uid} is not in {group}"))
            return
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            request = parse_request(line, self._jobs)
        except TimeoutError:
            await _send(writer, _error(f"no request within {READ_TIMEOUT:g} s"))
            return
        except (ApiError, ValueError) as exc:  # ValueError: a line over the size limit
            await _send(writer, _error(str(exc)))
            return
        if isinstance(request, Submit):
            await self._submit(request, writer)
        elif isinstance(request, Cancel):
            await self._cancel(request, writer)
        elif isinstance(request, ListRuns):
            await _send(writer, {"ok": True, "runs": [r.to_json() for r in self._runs.runs()]})
        elif isinstance(request, Status):
            await _send(writer, self._status())

    def _status(self) -> dict[str, Any]:
        current = self._runs.current()
        return {
            "ok": True,
            "current": current.to_json() if current else None,
            "queued": self._runs.queued(),
        }

    async def _cancel(self, request: Cancel, writer: asyncio.StreamWriter) -> None:
        try:
            record = self._runs.cancel(request.run)
        except KeyError:
            await _send(writer, _error(f"no run {request.run!r}; see lexi-maint list"))
            return
        await _send(writer, {"ok": True, "run": record.to_json()})

    async def _submit(self, request: Submit, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def deliver(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        try:
            record, created = self._runs.submit(
                request.job, request.reprocess, deliver if request.wait else None, request.trigger
            )
        except RuntimeError as exc:
            await _send(writer, _error(str(exc)))
            return
        try:
            await _send(writer, {"ok": True, "created": created, "run": record.to_json()})
            if request.wait:
                await self._stream(record.run_id, events, writer)
        finally:
            self._runs.unsubscribe(record.run_id, deliver)

    async def _stream(
        self, run_id: str, events: asyncio.Queue[dict[str, Any]], writer: asyncio.StreamWriter
    ) -> None:
        """Forward events until the run's 'finished' event (published after its last line)."""
        while True:
            try:
                event = await asyncio.wait_for(events.get(), timeout=5.0)
            except TimeoutError:
                current = self._runs.get(run_id)
                if current is None or current.final:  # defensive: never wait forever
                    run = current.to_json() if current else {"run_id": run_id}
                    await _send(writer, {"event": "finished", "run": run})
                    return
                continue
            await _send(writer, event)
            if event.get("event") == "finished":
                return


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    writer.write(encode(message))
    await writer.drain()


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
