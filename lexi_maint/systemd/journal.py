"""Logging to journald's native protocol, with lexi-maint's own fields.

Fields: LEXI_JOB, LEXI_RUN, LEXI_DOCUMENT, LEXI_PHASE, the run summary's LEXI_DONE,
LEXI_FAILED, LEXI_SKIPPED and LEXI_DURATION, a document's LEXI_OUTCOME and LEXI_ERROR_CLASS,
and MESSAGE_ID, taken from a log record's `extra` (lower-case names). Every MESSAGE_ID
below has an entry in systemd/lexi-maint.catalog, which `journalctl -x` shows beside it.

Without a journal socket, records go to stderr as "<N>message" lines,
which journald (or a terminal) reads as MESSAGE with PRIORITY.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping
from typing import TextIO

from lexi_maint.printable import EscapeArguments, printable

JOURNAL_SOCKET = "/run/systemd/journal/socket"
FIELDS = (
    "LEXI_JOB", "LEXI_RUN", "LEXI_DOCUMENT", "LEXI_PHASE",
    "LEXI_DONE", "LEXI_FAILED", "LEXI_SKIPPED", "LEXI_DURATION",
    "LEXI_OUTCOME", "LEXI_ERROR_CLASS",
    "MESSAGE_ID",
)  # fmt: skip

# MESSAGE_IDs (128-bit, as journalctl MESSAGE_ID= filters expect)
RUN_STARTED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c01"
RUN_FINISHED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c02"
RUN_FAILED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c03"
SERVICE_STOPPED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c04"
SERVICE_RESTORED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c05"
DOCUMENT_FINISHED = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c06"
RUN_SUMMARY = "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c07"  # the pipeline's own summary of a run
MESSAGE_IDS = (RUN_STARTED, RUN_FINISHED, RUN_FAILED, SERVICE_STOPPED, SERVICE_RESTORED,
               DOCUMENT_FINISHED, RUN_SUMMARY)  # fmt: skip


def syslog_priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def encode_entry(fields: Mapping[str, str]) -> bytes:
    """The native protocol: KEY=value lines; values with newlines length-prefixed."""
    parts = []
    for key, value in fields.items():
        data = value.encode("utf-8")
        if b"\n" in data:
            parts.append(key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(key.encode() + b"=" + data + b"\n")
    return b"".join(parts)


def record_fields(record: logging.LogRecord, message: str, identifier: str) -> dict[str, str]:
    fields = {
        "MESSAGE": message,
        "PRIORITY": str(syslog_priority(record.levelno)),
        "SYSLOG_IDENTIFIER": identifier,
        "CODE_FILE": record.pathname,
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName,
        "LOGGER": record.name,
    }
    extra = vars(record)  # logging puts a call's `extra=` fields in the record's own dict
    for name in FIELDS:
        value = extra.get(name.lower())
        if value is not None:
            fields[name] = printable(str(value))
    return fields


class JournalHandler(logging.Handler):
    """Sends records to journald; falls back to stderr lines if the socket is gone."""

    def __init__(self, identifier: str = "lexi-maint", path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self._identifier = identifier
        self._path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._fallback = StderrHandler()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = encode_entry(record_fields(record, self.format(record), self._identifier))
            self._sock.sendto(data, self._path)
        except OSError:
            self._fallback.handle(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


class StderrHandler(logging.StreamHandler[TextIO]):
    """'<N>message' lines: journald turns the prefix into PRIORITY=N."""

    def __init__(self, stream: TextIO | None = None, *, prefix: bool = True) -> None:
        super().__init__(stream or sys.stderr)
        self._prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return f"<{syslog_priority(record.levelno)}>{text}" if self._prefix else text


def journal_available(environ: Mapping[str, str] = os.environ) -> bool:
    """True when our stderr is connected to the journal (systemd sets JOURNAL_STREAM)."""
    return bool(environ.get("JOURNAL_STREAM")) and os.path.exists(JOURNAL_SOCKET)


def configure_logging(verbose: bool, environ: Mapping[str, str] = os.environ) -> None:
    handler: logging.Handler
    if journal_available(environ):
        handler = JournalHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = StderrHandler(prefix=False)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(EscapeArguments())  # names and messages cannot forge lines
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose or journal_available(environ) else logging.WARNING)
