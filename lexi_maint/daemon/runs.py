"""The daemon's runs: a queue that runs one batch at a time (thread-safe, in memory).

A submission of a job that is already queued or running returns that run. Subscribers
(waiting clients) get a callback per event; callbacks must be thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from lexi_maint.errors import ExitCode
from lexi_maint.lifecycle.machine import FINAL, Phase
from lexi_maint.lifecycle.recovery import Interrupted
from lexi_maint.state import new_run_id

KEEP_FINISHED = 100

Subscriber = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    job: str
    reprocess: bool
    phase: Phase = Phase.QUEUED
    message: str = "waiting for its turn"
    status_text: str = ""
    exit_code: int | None = None
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    trigger: str = "operator"  # timer or operator (daemon.api.TRIGGERS)

    @property
    def final(self) -> bool:
        return self.phase in FINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job": self.job,
            "reprocess": self.reprocess,
            "phase": self.phase.value,
            "message": self.message,
            "status": self.status_text,
            "exit_code": self.exit_code,
            "submitted_at": self.submitted_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "trigger": self.trigger,
        }


class RunQueue:
    def __init__(self) -> None:
        self._lock = threading.Condition(threading.RLock())
        self._runs: dict[str, RunRecord] = {}
        self._queue: list[str] = []
        self._cancel: dict[str, threading.Event] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self.closed = False

    # -- client side -----------------------------------------------------------------------

    def submit(
        self,
        job: str,
        reprocess: bool,
        subscriber: Subscriber | None = None,
        trigger: str = "operator",
    ) -> tuple[RunRecord, bool]:
        """The new run, True; or the job's queued/running run, False.

        A subscriber is registered before the run can be taken, so it misses no event.
        """
        with self._lock:
            if self.closed:
                raise RuntimeError("the daemon is stopping; submit again once it is back")
            for run in self._runs.values():
                if run.job == job and not run.final:
                    if subscriber is not None:
                        self._subscribers.setdefault(run.run_id, []).append(subscriber)
                    return run, False
            record = RunRecord(new_run_id(job), job, reprocess, trigger=trigger)
            if subscriber is not None:
                self._subscribers[record.run_id] = [subscriber]
            self._runs[record.run_id] = record
            self._cancel[record.run_id] = threading.Event()
            self._queue.append(record.run_id)
            self._lock.notify_all()
            return record, True

    def cancel(self, run_id: str) -> RunRecord:
        with self._lock:
            record = self._runs.get(run_id)
            if record is None:
                raise KeyError(run_id)
            if record.final:
                return record
            self._cancel[run_id].set()
            queued = run_id in self._queue
            if queued:
                self._queue.remove(run_id)
        if queued:
            return self.update(run_id, phase=Phase.CANCELLED, message="cancelled while queued",
                               exit_code=ExitCode.CANCELLED, finished_at=time.time())  # fmt: skip
        return record

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: r.submitted_at)

    def current(self) -> RunRecord | None:
        with self._lock:
            active = [r for r in self._runs.values() if r.started_at and not r.final]
            return active[0] if active else None

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def subscribe(self, run_id: str, callback: Subscriber) -> None:
        with self._lock:
            self._subscribers.setdefault(run_id, []).append(callback)

    def unsubscribe(self, run_id: str, callback: Subscriber) -> None:
        with self._lock:
            listeners = self._subscribers.get(run_id, [])
            if callback in listeners:
                listeners.remove(callback)

    # -- executor side ---------------------------------------------------------------------

    def take(self, timeout: float) -> tuple[RunRecord, threading.Event] | None:
        with self._lock:
            if not self._queue:
                self._lock.wait(timeout)
            if not self._queue or self.closed:
                return None
            run_id = self._queue.pop(0)
            record = self._set(run_id, started_at=time.time())
            return record, self._cancel[run_id]

    def update(self, run_id: str, **changes: Any) -> RunRecord:
        with self._lock:
            before = self._runs[run_id].final
            record = self._set(run_id, **changes)
        if record.final and not before:
            self.publish(run_id, {"event": "finished", "run": record.to_json()})
        return record

    def add_interrupted(self, found: Interrupted) -> None:
        """Record a run the daemon did not run itself (found interrupted at start)."""
        record = RunRecord(
            run_id=found.run_id,
            job=found.job,
            reprocess=False,
            phase=Phase.INTERRUPTED,
            message=found.message,
            exit_code=ExitCode.UNAVAILABLE,
            submitted_at=found.since,
            started_at=found.since,
            finished_at=found.finished_at,
        )
        with self._lock:
            self._runs[record.run_id] = record
            self._cancel[record.run_id] = threading.Event()

    def publish(self, run_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            listeners = list(self._subscribers.get(run_id, []))
        for callback in listeners:
            callback(event)

    def close(self) -> list[RunRecord]:
        """Stop taking work: cancel queued runs, signal the running one. Returns those."""
        with self._lock:
            self.closed = True
            waiting = list(self._queue)
        touched = [self.cancel(run_id) for run_id in waiting]
        with self._lock:
            for record in self._runs.values():
                if record.started_at and not record.final:
                    self._cancel[record.run_id].set()
                    touched.append(record)
            self._lock.notify_all()
            return touched

    def _set(self, run_id: str, **changes: Any) -> RunRecord:
        record = replace(self._runs[run_id], **changes)
        self._runs[run_id] = record
        self._trim()
        return record

    def _trim(self) -> None:
        finished = [r for r in self._runs.values() if r.final]
        for old in sorted(finished, key=lambda r: r.submitted_at)[:-KEEP_FINISHED]:
            del self._runs[old.run_id]
            self._cancel.pop(old.run_id, None)
            self._subscribers.pop(old.run_id, None)
