"""The job-wide limit on model calls in flight, shared by every worker process.

`FileSlots` keeps `max_concurrency` slot files under `<state_dir>/llm/slots/`; a call holds
one by an exclusive `flock` on it for as long as its HTTP request runs. The kernel drops
a process's flocks when it dies, so a worker that is SIGKILLed (OOM, document_timeout)
can never leak a slot, and there is no server whose lifetime must be managed.

Each worker opens the files itself (a lock belongs to the open file description, so
descriptors must not be inherited across fork). Within a process one task at a time looks
for a free slot (an asyncio.Lock queues the others in order). A freed slot is handed over
without polling: the releasing process writes one byte to the slot file after unlocking it,
and the process in the waiting room watches the directory with inotify (`_Releases`), so
the kernel wakes it with the name of the slot just freed, which it then tries (a
non-blocking flock, about 1 µs). Only one process at a time is in that room: the others wait
in the kernel to enter it (a blocking flock on `waiting-room`, in a thread), so a release
wakes one process instead of every process waiting for a slot (with 32 workers and 64
slots, up to 31 wake-ups per call that found nothing). A process keeps the room until none
of its tasks waits for a slot: a document that needs 20 calls at once (a long document's
windows) gets 20 releases in a row instead of one per visit, after every other waiting
document had its turn; with one slot per visit the long documents, whose calls are the
longest, were served last and their calls ran alone at the end of the batch. A slot freed
by a process that died announces nothing: after `SAFETY_SECONDS` without an announcement
a waiter looks at every slot once. Where inotify is unavailable, waiters look again after
a pause of about 2 % of the recent call duration (2-50 ms).

`LocalSlots` is the in-process equivalent for tests and tools.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import logging
import os
import random
import struct
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

MIN_POLL = 0.002
MAX_POLL = 0.05
POLL_SHARE = 0.02  # of the recent call duration
SAFETY_SECONDS = 1.0  # a waiter looks at every slot at least this often
_EWMA = 0.2
_PREFIX = "slot-"
_ROOM = "waiting-room"


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
            os.open(directory / f"{_PREFIX}{i:04d}", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            for i in range(count)
        ]
        self._room = os.open(directory / _ROOM, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._free = list(range(count))  # slots this process does not hold
        self._turn = asyncio.Lock()
        self._queued = 0  # tasks of this process waiting for their turn
        self._in_room = False
        self._entering: asyncio.Future[None] | None = None  # the thread taking the room
        self._call_seconds = 1.0
        self._releases = _Releases.watch(directory)
        self.polls = 0  # times every slot was found taken (for tests and the benchmark)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        index = await self._acquire()
        started = asyncio.get_running_loop().time()
        try:
            yield
        finally:
            elapsed = asyncio.get_running_loop().time() - started
            self._call_seconds += _EWMA * (elapsed - self._call_seconds)
            fd = self._fds[index]
            fcntl.flock(fd, fcntl.LOCK_UN)
            self._free.append(index)
            os.pwrite(fd, b"r", 0)  # announces the release to waiting processes (inotify)

    async def _acquire(self) -> int:
        self._queued += 1
        counted = True
        try:
            async with self._turn:
                self._queued -= 1
                counted = False
                try:
                    return await self._take()
                finally:
                    if self._queued == 0:
                        self._leave_room()  # else the next task of this process uses it
        finally:
            if counted:  # cancelled before its turn
                self._queued -= 1
                if self._queued == 0 and not self._turn.locked():
                    self._leave_room()

    async def _take(self) -> int:
        """A free slot, waiting in the waiting room (entered once for a run of this
        process's tasks) when there is none."""
        index = self._try(None)
        if index is not None:
            return index
        if not self._in_room:
            await self._enter_room()
            if self._releases is not None:
                self._releases.drain()  # old news: the full pass below sees every slot as is
        candidates: set[int] | None = None  # None: look at every slot
        while True:
            index = self._try(candidates)
            if index is not None:
                return index
            self.polls += 1
            candidates = await self._next_release()

    async def _enter_room(self) -> None:
        """Take the waiting room: a blocking flock taken in a thread, so the event loop goes
        on; one thread per process at a time. A task cancelled while the thread waits leaves
        the thread to the next task of this process, or, when none wants the room any more,
        to `_entered`, which lets the room go as soon as the thread gets it."""
        if self._entering is None:
            entering = asyncio.get_running_loop().run_in_executor(
                None, fcntl.flock, self._room, fcntl.LOCK_EX
            )
            entering.add_done_callback(self._entered)  # runs before the waiting task resumes
            self._entering = entering
        await asyncio.shield(self._entering)

    def _entered(self, entering: asyncio.Future[None]) -> None:
        self._entering = None
        if entering.cancelled() or entering.exception() is not None:
            return
        if self._queued == 0 and not self._turn.locked():
            fcntl.flock(self._room, fcntl.LOCK_UN)  # the task that wanted it was cancelled
        else:
            self._in_room = True

    def _leave_room(self) -> None:
        if self._in_room:
            self._in_room = False
            fcntl.flock(self._room, fcntl.LOCK_UN)

    async def _next_release(self) -> set[int] | None:
        if self._releases is not None:
            return await self._releases.next(SAFETY_SECONDS)
        pause = min(MAX_POLL, max(MIN_POLL, POLL_SHARE * self._call_seconds))
        await asyncio.sleep(pause * random.uniform(0.75, 1.25))
        return None

    def _try(self, candidates: set[int] | None) -> int | None:
        if candidates is None:
            random.shuffle(self._free)
            order = list(self._free)
        else:
            order = [i for i in self._free if i in candidates]
        for index in order:
            try:
                fcntl.flock(self._fds[index], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self._free.remove(index)
            return index
        return None

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)  # closing drops any lock still held
        self._fds = []
        if self._room >= 0:
            os.close(self._room)
            self._room = -1
        if self._releases is not None:
            self._releases.close()
            self._releases = None


class _Releases:
    """inotify on the slot directory: the slot files written to (released) since last read."""

    _IN_MODIFY = 0x00000002
    _IN_Q_OVERFLOW = 0x00004000
    _IN_NONBLOCK = os.O_NONBLOCK
    _IN_CLOEXEC = os.O_CLOEXEC
    _EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def watch(cls, directory: Path) -> _Releases | None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.inotify_init1(cls._IN_NONBLOCK | cls._IN_CLOEXEC))
        except (OSError, AttributeError):
            fd = -1
        if fd < 0:
            log.debug("inotify unavailable: waiting for a call slot polls")
            return None
        if int(libc.inotify_add_watch(fd, os.fsencode(directory), cls._IN_MODIFY)) < 0:
            log.debug("cannot watch %s: waiting for a call slot polls", directory)
            os.close(fd)
            return None
        return cls(fd)

    def drain(self) -> set[int] | None:
        """Slot numbers announced since the last read (None: too many, look at all)."""
        released: set[int] = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return released
            for mask, name in self._events(data):
                if mask & self._IN_Q_OVERFLOW:
                    return None
                if name.startswith(_PREFIX) and name[len(_PREFIX) :].isdigit():
                    released.add(int(name[len(_PREFIX) :]))

    def _events(self, data: bytes) -> list[tuple[int, str]]:
        events, offset = [], 0
        while offset + self._EVENT.size <= len(data):
            _, mask, _, length = self._EVENT.unpack_from(data, offset)
            start = offset + self._EVENT.size
            name = data[start : start + length].rstrip(b"\0").decode("ascii", "replace")
            events.append((mask, name))
            offset = start + length
        return events

    async def next(self, timeout: float) -> set[int] | None:
        """Wait for announcements (the kernel wakes the loop); None after `timeout`."""
        released = self.drain()
        if released or released is None:
            return released
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(self._fd, wake)
        try:
            async with asyncio.timeout(timeout):
                await readable
        except TimeoutError:
            return None
        finally:
            loop.remove_reader(self._fd)
        return self.drain() or None

    def close(self) -> None:
        os.close(self._fd)


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
