"""The runner: worker processes, the memory watermark, retries and the ledger.

One worker process per document (forked, so start-up is cheap); `workers` of them at
once. The runner alone writes the ledger. It waits on the workers' pipes and exit
sentinels, never on fixed sleeps, and re-reads memory only while it is holding work.

A failure marked `stop_job` (the model API rejected the key, or the account has no balance:
every document would fail the same way) stops the job: nothing new starts, running workers
are killed and their documents put back to `pending` without counting the attempt, and the
summary says why (`RunSummary.stopped`, exit status 3).

A failure marked `outage` (the graph store, the model API or the disk failed, not the
document) is checked by `OutageGuard` (outage.py): a real outage gives the attempt back and
pauses the run - no document starts while the dependency is probed with backoff - until it
answers again or the outage budget is spent; then the run stops like a stopped job, and
the documents it did not process stay `pending` for the next run.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path

from lexi_maint.errors import Dependency, ErrorClass
from lexi_maint.pipeline.contract import Failure, Outcome, SourceFile, Success
from lexi_maint.pipeline.worker import StageFactory, worker_main
from lexi_maint.procfs import already_dying
from lexi_maint.run.events import (
    DocumentFinished,
    DocumentStarted,
    Event,
    JobStopped,
    MemoryHeld,
    RunFinished,
    RunStarted,
    RunSummary,
)
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.memory import MemoryProbe, MemoryReading
from lexi_maint.run.outage import OutageGuard, Verdict
from lexi_maint.run.plan import Action, Decision, Found, Status
from lexi_maint.run.scheduler import Attempt, Scheduler
from lexi_maint.run.stop import StopSignal

log = logging.getLogger(__name__)

HOLD_RECHECK_SECONDS = 0.5
STOP_GRACE_SECONDS = 10.0  # how long workers get to end after SIGTERM when a run stops
_FORK = multiprocessing.get_context("fork")


@dataclass(frozen=True)
class RunnerSettings:
    job: str
    input_root: Path
    workers: int
    max_attempts: int
    document_timeout: float
    memory_watermark: float


@dataclass
class _Running:
    path: str
    attempt: int
    process: BaseProcess
    conn: Connection
    started: float
    deadline: float
    outcome: Outcome | None = None


@dataclass
class _Tally:
    done: int = 0
    failed: int = 0
    finished: int = 0
    started_at: float = field(default_factory=time.monotonic)


class Runner:
    def __init__(
        self,
        settings: RunnerSettings,
        ledger: Ledger,
        run_id: str,
        make_stages: StageFactory,
        probe: MemoryProbe,
        on_event: Callable[[Event], None] = lambda event: None,
        stop: StopSignal | None = None,
        outage: OutageGuard | None = None,
    ) -> None:
        self._stop = stop
        self._outage = outage
        self._s = settings
        self._ledger = ledger
        self._run_id = run_id
        self._make_stages = make_stages
        self._probe = probe
        self._emit = on_event
        self._running: dict[str, _Running] = {}
        self._found: dict[str, Found] = {}
        self._tally = _Tally()
        self._held_logged = False
        self._stopped: JobStopped | None = None
        self._left_pending = 0
        self._queued = 0

    def run(
        self, found: Sequence[Found], decisions: Sequence[Decision], interrupted: int
    ) -> RunSummary:
        self._found = {f.path: f for f in found}
        queue = [d.path for d in decisions if d.action is Action.PROCESS]
        self._queued = len(queue)
        self._emit(_started_event(self._s.job, self._run_id, found, decisions, interrupted))
        scheduler = Scheduler(
            largest_first([d.path for d in decisions if d.action is Action.PROCESS and not d.solo],
                          self._found),
            workers=self._s.workers,
            max_attempts=self._s.max_attempts,
            solo_last=[d.path for d in decisions if d.action is Action.PROCESS and d.solo],
        )  # fmt: skip
        try:
            if self._outage is not None:
                self._outage.check_all()  # a dependency down at the start: wait before any work
            while not scheduler.finished and self._stopped is None and not self._stopping:
                self._start_what_fits(scheduler)
                self._wait_and_collect(scheduler, queued=len(queue))
                self._watch_outage(scheduler)
        finally:
            self._kill_all()
        if self._stop is not None and self._stop.signum is not None:
            # the operator still sees what the run did before it raises
            self._summary(found, decisions, queued=len(queue), signum=self._stop.signum)
            self._stop.check()  # raises Stopped: the caller records the run as cancelled
        return self._summary(found, decisions, queued=len(queue))

    @property
    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    # -- starting --------------------------------------------------------------------------

    def _start_what_fits(self, scheduler: Scheduler) -> None:
        while not self._stopping and not self._paused:
            reading = self._probe()
            memory_ok = reading.ratio < self._s.memory_watermark
            path = scheduler.next(memory_ok=memory_ok)
            if path is None:
                self._note_hold(scheduler, memory_ok, reading)
                return
            if not memory_ok:
                log.warning("memory above watermark with nothing running; starting %s anyway: %s",
                            path, reading.describe())  # fmt: skip
            self._held_logged = False
            self._spawn(path, solo=scheduler.is_solo(path))

    def _note_hold(self, scheduler: Scheduler, memory_ok: bool, reading: MemoryReading) -> None:
        holding = not memory_ok and scheduler.waiting and len(scheduler.running) < self._s.workers
        if holding and not self._held_logged:
            self._held_logged = True
            self._emit(MemoryHeld(reading, len(scheduler.running)))

    def _spawn(self, path: str, *, solo: bool) -> None:
        attempt = self._ledger.mark_running(self._s.job, path, self._run_id)
        f = self._found[path]
        source = SourceFile(Path(path), self._s.input_root, f.sha256, f.size)
        parent_end, child_end = _FORK.Pipe(duplex=False)
        process = _FORK.Process(
            target=worker_main, args=(child_end, source, self._make_stages), daemon=True
        )
        gc.freeze()  # the worker's collections skip the runner's objects: their pages stay shared
        try:
            process.start()
        finally:
            gc.unfreeze()
        child_end.close()
        now = time.monotonic()
        self._running[path] = _Running(
            path, attempt, process, parent_end, now, now + self._s.document_timeout
        )
        self._emit(DocumentStarted(path, attempt, process.pid or 0, solo))

    # -- waiting ---------------------------------------------------------------------------

    def _wait_and_collect(self, scheduler: Scheduler, *, queued: int) -> None:
        probe_in = self._outage.next_probe_in() if self._outage is not None else None
        if not self._running and probe_in is None:
            return
        now = time.monotonic()
        timeout = min((r.deadline for r in self._running.values()), default=now + 3600) - now
        if probe_in is not None:
            timeout = min(timeout, probe_in)  # paused on an outage: probe on time
        elif scheduler.waiting and len(self._running) < self._s.workers:
            timeout = min(timeout, HOLD_RECHECK_SECONDS)  # holding on memory: look again soon
        handles: list[Connection | int] = [self._stop.fd] if self._stop is not None else []
        for r in self._running.values():
            handles.append(r.process.sentinel)
            if r.outcome is None:  # read the result as soon as it is sent (pipes are small)
                handles.append(r.conn)
        ready = set(wait(handles, timeout=max(timeout, 0.0)))
        if self._stop is not None and self._stop.fd in ready:
            self._stop.drain()
        for r in list(self._running.values()):
            if r.path not in self._running:  # released when the job stopped
                continue
            if r.outcome is None and r.conn in ready:
                r.outcome = _receive(r.conn)
            if r.process.sentinel in ready:
                self._finish(scheduler, r, _exit_outcome(r), queued=queued)
            elif time.monotonic() >= r.deadline:
                _kill(r.process)
                message = f"no result within document_timeout ({self._s.document_timeout:g} s)"
                self._finish(
                    scheduler, r, Failure(ErrorClass.TIMEOUT, message, False), queued=queued
                )

    def _finish(self, scheduler: Scheduler, r: _Running, outcome: Outcome, *, queued: int) -> None:
        r.process.join()
        r.conn.close()
        del self._running[r.path]
        self._ledger.record(self._s.job, r.path, outcome)
        if isinstance(outcome, Failure) and self._outage_claim_holds(r, outcome):
            self._give_back(scheduler, r, outcome, queued=queued)
            return
        if isinstance(outcome, Success) and self._outage is not None:
            self._outage.document_succeeded()
        if isinstance(outcome, Failure) and outcome.stop_job:
            self._stop_job(scheduler, r, outcome, queued=queued)
            return
        failed = isinstance(outcome, Failure)
        requeued = scheduler.ended(
            Attempt(
                r.path,
                r.attempt,
                failed=failed,
                error_class=outcome.error_class if isinstance(outcome, Failure) else None,
                retryable=isinstance(outcome, Failure) and outcome.retryable,
            )
        )
        if not requeued:
            self._tally.finished += 1
            if failed:
                self._tally.failed += 1
            else:
                self._tally.done += 1
        self._emit(self._finished_event(r, outcome, queued=queued, requeued=requeued))

    def _stop_job(
        self, scheduler: Scheduler, r: _Running, outcome: Failure, *, queued: int
    ) -> None:
        if outcome.retryable:  # not the document's fault: it waits for the next run
            self._ledger.release(self._s.job, r.path, keep_error=True)
        else:
            self._tally.finished += 1
            self._tally.failed += 1
            self._emit(self._finished_event(r, outcome, queued=queued, requeued=False))
        released = self._release_running()
        self._left_pending = released + scheduler.waiting + (1 if outcome.retryable else 0)
        self._stopped = JobStopped(r.path, outcome.message, released)
        log.error("job %s stopped: %s", self._s.job, outcome.message)
        self._emit(self._stopped)

    # -- outages ---------------------------------------------------------------------------

    @property
    def _paused(self) -> bool:
        return self._outage is not None and self._outage.paused

    def _outage_claim_holds(self, r: _Running, outcome: Failure) -> bool:
        if not outcome.outage or self._outage is None:
            return False
        return self._outage.failed(Dependency(outcome.outage), r.started)

    def _give_back(
        self, scheduler: Scheduler, r: _Running, outcome: Failure, *, queued: int
    ) -> None:
        """A dependency failed this attempt: it does not count, the document waits again."""
        self._ledger.release(self._s.job, r.path, keep_error=True)
        scheduler.give_back(r.path)
        log.warning("%s: %s is down; attempt given back: %s", Path(r.path).name,
                    outcome.outage, outcome.message)  # fmt: skip
        self._emit(self._finished_event(r, outcome, queued=queued, requeued=True))

    def _watch_outage(self, scheduler: Scheduler) -> None:
        """While paused: probe when due; past the outage budget, stop the run."""
        if self._outage is None or not self._outage.paused:
            return
        if self._outage.probe_due() is not Verdict.GIVE_UP:
            return
        budget = self._outage.policy.budget
        reason = f"{self._outage.describe()}; outage budget of {budget:g} s spent"
        released = self._release_running()
        self._left_pending = released + scheduler.waiting
        self._stopped = JobStopped("", reason, released)
        log.error("job %s stopped: %s", self._s.job, reason)
        self._emit(self._stopped)

    def _release_running(self) -> int:
        """Kill the running workers; documents without a result go back to pending."""
        released = 0
        for r in list(self._running.values()):
            _kill(r.process)
            r.process.join()
            if r.outcome is None and r.conn.poll():
                r.outcome = _receive(r.conn)
            r.conn.close()
            del self._running[r.path]
            result = r.outcome
            if result is None or (isinstance(result, Failure) and result.stop_job):
                self._ledger.release(self._s.job, r.path)
                released += 1
                continue
            self._settle_stopped(r, result)  # it finished just in time
        return released

    def _finished_event(
        self, r: _Running, outcome: Outcome, *, queued: int, requeued: bool
    ) -> DocumentFinished:
        return DocumentFinished(
            path=r.path,
            outcome=outcome,
            attempt=r.attempt,
            seconds=time.monotonic() - r.started,
            requeued=requeued,
            done=self._tally.done,
            failed=self._tally.failed,
            finished=self._tally.finished,
            queued=queued,
            eta_seconds=_eta(self._tally, queued),
        )

    def _kill_all(self) -> None:
        """End every worker when the run stops early, blaming only the right one.

        When the kernel OOM-kills a worker, systemd (OOMPolicy=stop) stops the whole unit,
        and the victim may still be dying. The runner sends its workers SIGTERM and only
        SIGKILLs stragglers itself, so a worker that ended by a SIGKILL the runner did not
        send was killed by someone else (the OOM killer): that document is 'killed' and its
        attempt counts. The others end by SIGTERM and become 'interrupted' (attempt given
        back). A worker that had already sent its result keeps it. Each recorded attempt is
        reported like any finished one (its journal entry: retry or failed, killed).
        """
        running = list(self._running.values())
        for r in running:
            _signal(r.process, signal.SIGTERM)
        _wait_exit(running, STOP_GRACE_SECONDS)
        # a victim of the OOM killer may still be exiting (freeing a large heap under
        # emulation, or slowed by memory.high): it is not a straggler of ours
        ours = {
            r.path for r in running if r.process.is_alive() and not already_dying(r.process.pid)
        }
        for r in running:
            if r.path in ours:
                _signal(r.process, signal.SIGKILL)
            r.process.join()
            if r.outcome is None and r.conn.poll():
                r.outcome = _receive(r.conn)
            killed_by_others = r.process.exitcode == -signal.SIGKILL and r.path not in ours
            if r.outcome is not None or killed_by_others:
                self._settle_stopped(r, _exit_outcome(r))
            verdict = "result kept" if r.outcome is not None else (
                "killed by someone else: attempt counts" if killed_by_others
                else "interrupted: attempt given back")  # fmt: skip
            log.warning("run stopping: worker %s for %s ended with exit code %s (%s)",
                        r.process.pid, Path(r.path).name, r.process.exitcode, verdict)  # fmt: skip
        self._running.clear()

    def _settle_stopped(self, r: _Running, outcome: Outcome) -> None:
        """Record an attempt that ended as the run stopped; it is retried (by the next job
        unit or run) when it failed retryably with attempts left."""
        self._ledger.record(self._s.job, r.path, outcome)
        failed = isinstance(outcome, Failure)
        requeued = (
            isinstance(outcome, Failure) and outcome.retryable and r.attempt < self._s.max_attempts
        )
        if not requeued:
            self._tally.finished += 1
            self._tally.failed += failed
            self._tally.done += not failed
        self._emit(self._finished_event(r, outcome, queued=self._queued, requeued=requeued))

    def _summary(
        self,
        found: Sequence[Found],
        decisions: Sequence[Decision],
        *,
        queued: int,
        signum: int | None = None,
    ) -> RunSummary:
        counts = {a: sum(1 for d in decisions if d.action is a) for a in Action}
        failed_rows = sum(
            1 for r in self._ledger.documents(self._s.job) if r.status is Status.FAILED
        )
        summary = RunSummary(
            job=self._s.job,
            run_id=self._run_id,
            total=len(found),
            processed=queued,
            done=self._tally.done,
            failed=self._tally.failed,
            unchanged=counts[Action.UNCHANGED],
            exhausted=counts[Action.EXHAUSTED],
            vanished=counts[Action.VANISHED],
            failed_in_ledger=failed_rows,
            seconds=time.monotonic() - self._tally.started_at,
            usage=self._ledger.run_usage(self._run_id),  # killed attempts' spend included
            stopped=self._stopped.reason if self._stopped else "",
            left_pending=self._left_pending,
            signal=signal.Signals(signum).name if signum is not None else "",
        )
        self._emit(RunFinished(summary))
        return summary


def _started_event(
    job: str, run_id: str, found: Sequence[Found], decisions: Sequence[Decision], interrupted: int
) -> RunStarted:
    def count(action: Action) -> int:
        return sum(1 for d in decisions if d.action is action)

    return RunStarted(
        job=job,
        run_id=run_id,
        total=len(found),
        queued=count(Action.PROCESS),
        unchanged=count(Action.UNCHANGED),
        exhausted=count(Action.EXHAUSTED),
        vanished=count(Action.VANISHED),
        interrupted=interrupted,
    )


def largest_first(paths: Sequence[str], found: Mapping[str, Found]) -> list[str]:
    """The longest documents start first (by file size; ties keep the plan's order): a
    large document that started last would run alone at the end, its model calls
    trickling through a pool the others have left empty."""
    return sorted(paths, key=lambda path: -found[path].size)


def _receive(conn: Connection) -> Outcome | None:
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return None
    return message if isinstance(message, (Success, Failure)) else None


def _exit_outcome(r: _Running) -> Outcome:
    r.process.join()
    if r.outcome is None and r.conn.poll():
        r.outcome = _receive(r.conn)
    if r.outcome is not None:  # the result was sent: a signal after that changes nothing
        return r.outcome
    code = r.process.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        return Failure(ErrorClass.KILLED, f"worker killed by {name}{hint}", True)
    return Failure(ErrorClass.INTERNAL, f"worker exited with status {code} and no result", True)


def _kill(process: BaseProcess) -> None:
    _signal(process, signal.SIGKILL)


def _signal(process: BaseProcess, signum: int) -> None:
    if process.is_alive() and process.pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _wait_exit(running: list[_Running], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = [r.process.sentinel for r in running]
    while pending and (left := deadline - time.monotonic()) > 0:
        done = set(wait(pending, timeout=left))
        pending = [s for s in pending if s not in done]


def _eta(tally: _Tally, queued: int) -> float | None:
    if tally.finished == 0:
        return None
    elapsed = time.monotonic() - tally.started_at
    return elapsed / tally.finished * max(queued - tally.finished, 0)
