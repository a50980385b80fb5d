"""Which document starts next: pure bookkeeping for the runner (no processes, no clock).

Rules:
- at most `workers` documents run at once;
- while memory is above the watermark no new document starts, unless nothing is running
  (then one starts, so a busy host cannot stall the job forever);
- a document whose worker was killed by a signal is retried once, alone: nothing else
  starts until the running workers have finished and that retry is over;
- other retryable failures go to the back of the queue while attempts remain;
- documents whose worker was killed in an earlier run (`solo_last`) run after all others,
  each alone, so a document that keeps blowing the memory cap cannot take others with it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from lexi_maint.errors import ErrorClass


@dataclass(frozen=True)
class Attempt:
    """How an attempt ended, as far as scheduling cares."""

    path: str
    attempt: int  # 1-based attempt number as counted by the ledger
    failed: bool = False
    error_class: ErrorClass | None = None
    retryable: bool = False


class Scheduler:
    def __init__(
        self,
        paths: Iterable[str],
        *,
        workers: int,
        max_attempts: int,
        solo_last: Iterable[str] = (),
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._queue: deque[str] = deque(paths)
        self._solo: deque[str] = deque()
        self._solo_last: deque[str] = deque(solo_last)  # after the queue, one at a time
        self._solo_active: str | None = None
        self._killed_once: set[str] = set()
        self.running: set[str] = set()
        self.workers = workers
        self.max_attempts = max_attempts

    @property
    def finished(self) -> bool:
        return not (self._queue or self._solo or self._solo_last or self.running)

    @property
    def waiting(self) -> int:
        return len(self._queue) + len(self._solo) + len(self._solo_last)

    def next(self, *, memory_ok: bool) -> str | None:
        """The path to start now, or None to wait for a running document to end."""
        if self._solo_active is not None:
            return None
        if not self._solo and not self._queue and self._solo_last:
            self._solo.append(self._solo_last.popleft())
        if self._solo:
            if self.running:
                return None
            path = self._solo.popleft()
            self._solo_active = path
            return self._start(path)
        if not self._queue or len(self.running) >= self.workers:
            return None
        if not memory_ok and self.running:
            return None
        return self._start(self._queue.popleft())

    def is_solo(self, path: str) -> bool:
        return self._solo_active == path

    def ended(self, result: Attempt) -> bool:
        """Record the end of an attempt; True when the document was queued again."""
        self.running.discard(result.path)
        if self._solo_active == result.path:
            self._solo_active = None
        if not result.failed or result.attempt >= self.max_attempts:
            return False
        if result.error_class is ErrorClass.KILLED:
            if result.path in self._killed_once:
                return False
            self._killed_once.add(result.path)
            self._solo.append(result.path)
            return True
        if result.retryable:
            self._queue.append(result.path)
            return True
        return False

    def give_back(self, path: str) -> None:
        """An attempt that does not count (a dependency was down): the document runs next."""
        self.running.discard(path)
        if self._solo_active == path:
            self._solo_active = None
            self._solo.appendleft(path)
        else:
            self._queue.appendleft(path)

    def _start(self, path: str) -> str:
        self.running.add(path)
        return path
