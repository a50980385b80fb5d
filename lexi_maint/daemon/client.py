"""Talking to lexi-maintd from the command line (adapter: one Unix socket connection)."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from lexi_maint.errors import DaemonRefused, DaemonUnavailable, LexiMaintError

CONNECT_TIMEOUT = 10.0


class Client:
    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = path
        self.timeout = timeout  # for replies; None waits as long as a run takes

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        for reply in self.stream(message):
            return reply
        raise DaemonUnavailable(f"lexi-maintd at {self.path} closed the connection")

    def stream(self, message: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The reply, then (for a waiting submit) every event line until 'finished'."""
        sock = self._connect()
        with sock, sock.makefile("rb") as lines:
            try:
                sock.sendall(json.dumps(message).encode() + b"\n")
            except OSError as exc:
                raise DaemonUnavailable(f"lexi-maintd at {self.path}: {exc}") from None
            first = True
            for raw in _lines(lines, self.path):
                reply: dict[str, Any] = json.loads(raw)
                if first and not reply.get("ok", False):
                    raise DaemonRefused(reply.get("error", "request refused"))
                first = False
                yield reply

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise DaemonUnavailable(
                f"cannot reach lexi-maintd at {self.path}: {exc.strerror or exc}"
                " (is lexi-maintd.socket active? systemctl status lexi-maintd)"
            ) from None
        sock.settimeout(self.timeout)
        return sock


def _lines(stream: Any, path: Path) -> Iterator[bytes]:
    try:
        yield from stream
    except OSError as exc:  # reset by a dying daemon, or no reply within the timeout
        raise DaemonUnavailable(f"lexi-maintd at {path} stopped answering: {exc}") from None


def submit_trigger(environ: Mapping[str, str] = os.environ) -> str:
    """ "timer" inside a unit a timer started (systemd sets $TRIGGER_UNIT), else "operator"."""
    return "timer" if environ.get("TRIGGER_UNIT", "").endswith(".timer") else "operator"


def submit_and_wait(
    client: Client, job: str, reprocess: bool, show: Callable[[str], None]
) -> dict[str, Any]:
    """Submit, print progress, return the finished run. SIGTERM cancels the run."""
    run_id: str | None = None

    def cancel(signum: int, frame: FrameType | None) -> None:
        if run_id:
            show(f"cancelling run {run_id} (signal {signum})")
            try:
                Client(client.path).request({"op": "cancel", "run": run_id})
            except LexiMaintError as exc:
                show(f"cancel failed: {exc}")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        for message in client.stream(
            {
                "op": "submit",
                "job": job,
                "reprocess": reprocess,
                "wait": True,
                "trigger": submit_trigger(),
            }
        ):
            if "run" in message and "event" not in message:
                run_id = message["run"]["run_id"]
                verb = "submitted" if message.get("created") else "already queued or running:"
                show(f"{verb} run {run_id} (job {job})")
            elif message.get("event") == "finished":
                finished: dict[str, Any] = message["run"]
                return finished
            else:
                show(describe_event(message))
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise DaemonUnavailable("lexi-maintd closed the connection before the run finished")


def describe_event(message: dict[str, Any]) -> str:
    event = message.get("event")
    if event == "line":
        return str(message.get("line", ""))
    if event == "status":
        return f"status: {message.get('status', '')}"
    if event == "phase":
        return f"{message.get('phase')}: {message.get('message', '')}"
    return json.dumps(message, ensure_ascii=False)


def format_run(run: dict[str, Any]) -> str:
    code = "" if run.get("exit_code") is None else f" exit {run['exit_code']}"
    status = f" · {run['status']}" if run.get("status") else ""
    return f"{run['run_id']}  {run['job']:<16} {run['phase']:<11}{code}{status}  {run['message']}"
