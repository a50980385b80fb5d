"""SIGTERM/SIGINT for a foreground run: set a flag and wake the runner, raise nothing.

Raising from a signal handler unwinds wherever the main thread happens to be, including
halfway through a ledger transaction (which then rolls back and loses, say, the record
that a worker was OOM-killed). Instead the handler records the signal and writes a byte
to a pipe the runner waits on; the runner stops between two steps.
"""

from __future__ import annotations

import contextlib
import os
import signal
from types import FrameType


class Stopped(BaseException):
    """The run ended early because of `signum`; raised by the runner between steps."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class StopSignal:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        os.set_blocking(self._read, False)
        self.signum: int | None = None

    def install(self) -> StopSignal:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    @property
    def fd(self) -> int:
        """Readable once a signal arrived (for select/wait)."""
        return self._read

    def is_set(self) -> bool:
        return self.signum is not None

    def check(self) -> None:
        if self.signum is not None:
            raise Stopped(self.signum)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)

    def trigger(self, signum: int) -> None:
        """What the handler does; also for tests."""
        self.signum = signum
        with contextlib.suppress(BlockingIOError):
            os.write(self._write, b"!")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.trigger(signum)
