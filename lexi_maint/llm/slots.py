"""The job-wide limit on model calls in flight, shared by every worker process.

`FileSlots` keeps `max_concurrency` slot files under `<state_dir>/llm/slots/`; a call holds
one by an exclusive `flock` on it for as long as its HTTP request runs. The kernel drops
a process's flocks when it dies, so a worker that is SIGKILLed (OOM, document_timeout)
can never leak a slot, and there is no server whose lifetime must be managed.

Each worker opens the files itself (a lock belongs to the open file description, so
descriptors must not be inherited across fork). Within a process one task at a time looks
for a free slot (an asyncio.Lock queues the others in order); when all are taken it looks
again after a pause of about 2 % of the recent call duration (2-50 ms): one pass is a
non-blocking flock per slot, about 1 µs each, so waiting costs little CPU and a freed slot
is taken within a few per cent of a call's time. Freed slots go to whichever process looks
first, which shares them about evenly between the documents in flight.

`LocalSlots` is the in-process equivalent for tests and tools.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

MIN_POLL = 0.002
MAX_POLL = 0.05
POLL_SHARE = 0.02  # of the recent call duration
_EWMA = 0.2


class Slots(Protocol):
    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the job's call slots for the duration of the block."""
        ...

    def close(self) -> None: ...


class FileSlots:
    """`count` slot files in `directory`; see the module docstring."""

    def __init__(self, directory: Path, count: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fds = [
            os.open(directory / f"slot-{i:04d}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            for i in range(count)
        ]
        self._free = list(range(count))  # slots this process does not hold
        self._turn = asyncio.Lock()
        self._call_seconds = 1.0
        self.polls = 0  # passes that found every slot taken (for tests and the benchmark)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        index = await self._acquire()
        started = asyncio.get_running_loop().time()
        try:
            yield
        finally:
            elapsed = asyncio.get_running_loop().time() - started
            self._call_seconds += _EWMA * (elapsed - self._call_seconds)
            fcntl.flock(self._fds[index], fcntl.LOCK_UN)
            self._free.append(index)

    async def _acquire(self) -> int:
        async with self._turn:
            while True:
                index = self._try_once()
                if index is not None:
                    return index
                self.polls += 1
                pause = min(MAX_POLL, max(MIN_POLL, POLL_SHARE * self._call_seconds))
                await asyncio.sleep(pause * random.uniform(0.75, 1.25))

    def _try_once(self) -> int | None:
        random.shuffle(self._free)
        for position, index in enumerate(self._free):
            try:
                fcntl.flock(self._fds[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            del self._free[position]
            return index
        return None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing drops any lock still held
        self._fds = []


class LocalSlots:
    """A plain asyncio semaphore: the limit for one process only."""

    def __init__(self, count: int) -> None:
        self._semaphore = asyncio.Semaphore(count)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            yield

    def close(self) -> None:
        return None
