"""Single-flight: identical requests in flight at the same moment share one paid call.

`KeyLocks.hold(key)` admits one holder per request key at a time, among the tasks of one
process and among the job's worker processes. `LlmSession.ask` looks in the response cache,
then holds the key, looks again and only then calls the model: the second of two identical
requests waits for the first and reads its answer from the cache instead of paying again.

Within a process the tasks queue on an `asyncio.Lock` per key, so only one of them touches
the lock file. Across processes the holder has an exclusive `flock` on
`<state_dir>/llm/inflight/<key>`; a waiter blocks in `flock` in a thread (the kernel wakes
it when the lock is released: no polling). The kernel drops the lock of a process that
dies, so a SIGKILLed worker never leaves a key locked. The holder unlinks the file before
unlocking, so files do not pile up; a waiter that then gets the lock of an unlinked file
sees that the path no longer names it and locks the path again (the usual pattern for lock
files that are removed).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

_WAITING_THREADS = 64  # processes waiting on a key at once, per process (threads are lazy)


class KeyLocks:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._dir = directory
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}
        self._threads: ThreadPoolExecutor | None = None
        self.waits = 0  # times a holder was waited for (tests, benchmark)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._enter_local(key)
        try:
            if lock.locked():
                self.waits += 1
            async with lock:
                fd = await self._lock_file(key)
                try:
                    yield
                finally:
                    _unlink_quietly(self._dir / key)
                    os.close(fd)  # releases the flock
        finally:
            self._leave_local(key)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None

    def _enter_local(self, key: str) -> asyncio.Lock:
        lock, users = self._local.get(key) or (asyncio.Lock(), 0)
        self._local[key] = (lock, users + 1)
        return lock

    def _leave_local(self, key: str) -> None:
        lock, users = self._local[key]
        if users <= 1:
            del self._local[key]
        else:
            self._local[key] = (lock, users - 1)

    async def _lock_file(self, key: str) -> int:
        path = self._dir / key
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.waits += 1
                await self._wait_for_lock(fd)
            if _still_names(path, fd):
                return fd
            os.close(fd)  # the holder removed that file: lock the path anew

    async def _wait_for_lock(self, fd: int) -> None:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(_WAITING_THREADS, "lexi-flight")
        future = asyncio.get_running_loop().run_in_executor(
            self._threads, fcntl.flock, fd, fcntl.LOCK_EX
        )
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(lambda _: os.close(fd))  # let go once the thread returns
            raise
        except BaseException:
            os.close(fd)
            raise


def _still_names(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
