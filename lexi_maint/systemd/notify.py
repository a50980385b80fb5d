"""sd_notify over $NOTIFY_SOCKET: the only module that touches it. UTF-8 safe.

A no-op without NOTIFY_SOCKET (a terminal, a test). Unlike the `sdnotify` package, which
encodes Latin-1 and swallows the error (a STATUS with "✅" is silently dropped), messages
are encoded as UTF-8 and send errors are logged once.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(raw: str) -> str:
    if raw.startswith("@"):  # abstract namespace
        return "\0" + raw[1:]
    return raw


class Notifier:
    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._address = environ.get("NOTIFY_SOCKET") or None
        self._warned = False
        self.watchdog_usec = _watchdog_usec(environ)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields: str | int) -> bool:
        """Send e.g. READY=1 STATUS=...; keys are upper-cased. True when delivered."""
        if self._address is None:
            return False
        message = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(_address(self._address))
                sock.sendall(message)
        except OSError as exc:
            if not self._warned:
                log.warning("sd_notify to %s failed: %s", self._address, exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(ready=1, status=status)

    def status(self, status: str) -> bool:
        return self.send(status=status)

    def stopping(self, status: str) -> bool:
        return self.send(stopping=1, status=status)

    def watchdog(self) -> bool:
        return self.send(watchdog=1)


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC when it is meant for this process (WATCHDOG_PID absent or ours)."""
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit():
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec)
