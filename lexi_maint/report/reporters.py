"""Reporters used when a run executes inside the job unit started by the daemon.

- `NotifyReporter`: sd_notify STATUS= ("cao_import: 14/49 ✅13 ❌1 · ETA 38 min"), which the
  daemon reads back as the unit's StatusText.
- `EventFile`: one JSON line per finished document in state_dir/runs/RUN.jsonl, which the
  daemon tails to stream progress to waiting clients.
- `JournalReporter`: per-document log records with LEXI_JOB/RUN/DOCUMENT/PHASE fields and
  the document's LEXI_OUTCOME (done, failed, retry) and LEXI_ERROR_CLASS; the run summary as
  one entry (MESSAGE_ID RUN_SUMMARY) with LEXI_DONE/FAILED/SKIPPED/DURATION. Every attempt
  gets one outcome entry: from its runner, or, when the runner died with its job unit (an
  OOM kill under OOMPolicy=stop), from whoever closes the attempt in the ledger afterwards
  (`journal_closed`: the next job unit or run, or the daemon).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from lexi_maint.pipeline.contract import Success
from lexi_maint.report.progress import (
    format_closed,
    format_document,
    format_hold,
    format_started,
    format_status_line,
    format_summary,
)
from lexi_maint.run.events import (
    AttemptClosed,
    DocumentFinished,
    Event,
    MemoryHeld,
    RunFinished,
    RunStarted,
    RunSummary,
)
from lexi_maint.systemd import journal
from lexi_maint.systemd.notify import Notifier

log = logging.getLogger("lexi_maint.run")


def fan_out(reporters: Iterable[Callable[[Event], None]]) -> Callable[[Event], None]:
    targets = list(reporters)

    def emit(event: Event) -> None:
        for target in targets:
            target(event)

    return emit


def status_line(event: Event, job: str) -> str | None:
    """The run's one-line state after `event`, or None when the event does not change it
    (pure): the unit's sd_notify STATUS= and, through the run's event file, the daemon's."""
    if isinstance(event, RunStarted):
        return f"{job}: 0/{event.queued} · starting"
    if isinstance(event, DocumentFinished):
        return format_status_line(event, job)
    if isinstance(event, RunFinished):
        return f"{job}: finished · ✅{event.summary.done} ❌{event.summary.failed}"
    return None


class NotifyReporter:
    """STATUS= for `systemctl status` of the job unit (the daemon reads the event file)."""

    def __init__(self, notifier: Notifier, job: str) -> None:
        self._notifier = notifier
        self._job = job

    def __call__(self, event: Event) -> None:
        line = status_line(event, self._job)
        if line is not None:
            self._notifier.status(line)


def document_fields(e: DocumentFinished) -> dict[str, str]:
    """LEXI_DOCUMENT, LEXI_OUTCOME (done, failed, retry) and LEXI_ERROR_CLASS (pure)."""
    fields = {"lexi_document": e.path}
    if isinstance(e.outcome, Success):
        return {**fields, "lexi_outcome": "done"}
    outcome = "retry" if e.requeued else "failed"
    return {**fields, "lexi_outcome": outcome, "lexi_error_class": e.outcome.error_class.value}


def closed_fields(e: AttemptClosed) -> dict[str, str]:
    """The same fields for an attempt closed after its runner died: LEXI_RUN is the run
    that made the attempt (pure)."""
    a = e.attempt
    return {"lexi_job": a.job, "lexi_run": a.run_id, "lexi_document": a.path,
            "lexi_outcome": "retry" if e.retry else "failed",
            "lexi_error_class": a.error_class.value}  # fmt: skip


def journal_closed(e: AttemptClosed, phase: str) -> None:
    """One DOCUMENT_FINISHED entry for a closed attempt, by whoever closed it: the next job
    unit or run (JournalReporter) or the daemon once the job unit is gone."""
    extra = {**closed_fields(e), "lexi_phase": phase, "message_id": journal.DOCUMENT_FINISHED}
    log.warning("%s", format_closed(e), extra=extra)


def summary_fields(s: RunSummary) -> dict[str, str]:
    """LEXI_DONE, LEXI_FAILED, LEXI_SKIPPED (unchanged, exhausted or gone), LEXI_DURATION
    in seconds (pure)."""
    return {
        "lexi_done": str(s.done),
        "lexi_failed": str(s.failed),
        "lexi_skipped": str(s.unchanged + s.exhausted + s.vanished),
        "lexi_duration": f"{s.seconds:.1f}",
    }


class EventFile:
    """Append-only JSON lines: the one channel from a daemon-started run to the daemon.

    A record carries the line to show (`line`) and, when the event changed it, the run's
    status line (`status`). A reader ignores a partial last line."""

    def __init__(self, path: Path, job: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._job = job

    def __call__(self, event: Event) -> None:
        record = _record(event)
        status = status_line(event, self._job)
        if status is not None:
            record = {**(record or {"event": "status"}), "status": status}
        if record is not None:
            self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _record(event: Event) -> dict[str, object] | None:
    if isinstance(event, RunStarted):
        return {"event": "started", "line": format_started(event), "queued": event.queued}
    if isinstance(event, DocumentFinished):
        return {
            "event": "document",
            "line": format_document(event),
            "path": event.path,
            "ok": isinstance(event.outcome, Success),
        }
    if isinstance(event, AttemptClosed):
        return {"event": "closed", "line": format_closed(event), "path": event.attempt.path}
    if isinstance(event, MemoryHeld):
        return {"event": "memory", "line": format_hold(event)}
    if isinstance(event, RunFinished):
        return {"event": "summary", "line": format_summary(event.summary)}
    return None


MAX_EVENT_READ = 1 << 20  # bytes read from a run's event file per poll


def read_events(path: Path, offset: int) -> tuple[list[dict[str, object]], int]:
    """Complete lines after byte `offset`, and the offset to continue from.

    The root daemon calls this on a file the job user owns, so it trusts nothing about it:
    no symlink is followed (O_NOFOLLOW), opening a FIFO does not block (O_NONBLOCK), only a
    regular file is read (fstat), and at most MAX_EVENT_READ bytes per poll (a file grown
    to gigabytes, or one that never ends, is read piece by piece; a line longer than that
    is skipped).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return [], offset
    except OSError as exc:  # ELOOP: a symlink planted in its place
        log.warning("run event file %s not read: %s", path, exc)
        return [], offset
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            log.warning("run event file %s is not a regular file; not read", path)
            return [], offset
        handle.seek(offset)
        data = handle.read(MAX_EVENT_READ)
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == MAX_EVENT_READ:  # one line longer than a read: skip it
        return [], offset + len(data)
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(record, dict):
            records.append(record)
    return records, offset + end


class JournalReporter:
    """Per-document entries carrying the run's fields (native journal protocol)."""

    def __init__(self, job: str, run_id: str) -> None:
        self._fields = {"lexi_job": job, "lexi_run": run_id}

    def __call__(self, event: Event) -> None:
        if isinstance(event, DocumentFinished):
            extra = {**self._fields, **document_fields(event), "lexi_phase": "run",
                     "message_id": journal.DOCUMENT_FINISHED}  # fmt: skip
            level = logging.INFO if isinstance(event.outcome, Success) else logging.WARNING
            log.log(level, "%s", format_document(event), extra=extra)
            return
        if isinstance(event, AttemptClosed):
            journal_closed(event, "run")
            return
        if isinstance(event, RunFinished):
            extra = {**self._fields, **summary_fields(event.summary), "lexi_phase": "run",
                     "message_id": journal.RUN_SUMMARY}  # fmt: skip
            level = logging.INFO if event.summary.exit_code == 0 else logging.WARNING
            log.log(level, "%s", format_summary(event.summary), extra=extra)
            return
        line = _record(event)
        if line is not None:
            log.info("%s", line["line"], extra={**self._fields, "lexi_phase": "run"})
