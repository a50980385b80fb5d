"""Issue 12: an attempt whose runner died with its job unit still gets one outcome entry.

The ledger closes what a dead unit left `running` (the daemon once the unit is gone, the
next job unit or run at its start); whoever closes it journals it: LEXI_OUTCOME retry or
failed, LEXI_ERROR_CLASS killed or interrupted, the run that made the attempt, its number.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lexi_maint.config import parse_config
from lexi_maint.errors import ErrorClass
from lexi_maint.lifecycle.attempts import LedgerAttempts
from lexi_maint.pipeline.contract import Failure
from lexi_maint.report.reporters import EventFile, JournalReporter, closed_fields
from lexi_maint.run.events import AttemptClosed, Event
from lexi_maint.run.job import report_closed
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_rows import ClosedAttempt
from lexi_maint.run.plan import Found, Status, plan
from lexi_maint.systemd import journal

HUGE, SMALL, OTHER = "/in/huge.txt", "/in/small.txt", "/in/other.txt"
UNIT = "lexi-pipeline-run1-1.service"


def open_ledger(tmp_path: Path, paths: tuple[str, ...] = (HUGE, SMALL)) -> Ledger:
    ledger = Ledger.open(tmp_path / "state" / "ledger.sqlite3")
    found = [Found(p, f"sha-{p}", 1) for p in paths]
    ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=2))
    ledger.start_run("j", "run1", 1)
    return ledger


def row(ledger: Ledger, path: str) -> tuple[Status, int, str | None]:
    r = ledger.document("j", path)
    return r.status, r.attempts, r.error_class


def test_a_document_alone_in_an_oom_killed_unit_was_the_victim(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    ledger.mark_running("j", HUGE, "run1")  # the runner died before recording the kill
    (closed,) = ledger.close_attempts("j", "run1", oom_unit=UNIT)
    assert (closed.path, closed.run_id, closed.attempt, closed.attempts) == (HUGE, "run1", 1, 1)
    assert closed.error_class is ErrorClass.KILLED and UNIT in closed.message
    assert row(ledger, HUGE) == (Status.FAILED, 1, "killed")  # the attempt counts
    assert row(ledger, SMALL) == (Status.PENDING, 0, None)


def test_with_several_running_nobody_knows_the_victim_but_a_killed_retry(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path, (HUGE, SMALL, OTHER))
    ledger.mark_running("j", HUGE, "run1")
    ledger.record("j", HUGE, Failure(ErrorClass.KILLED, "worker killed by SIGKILL", True))
    for path in (HUGE, SMALL):
        ledger.mark_running("j", path, "run1")
    ledger.mark_running("j", OTHER, "another-run")  # not this run's: left alone
    closed = {a.path: a for a in ledger.close_attempts("j", "run1", oom_unit=UNIT)}
    assert set(closed) == {HUGE, SMALL}
    assert (closed[HUGE].attempt, closed[HUGE].attempts) == (2, 2)
    assert closed[HUGE].error_class is ErrorClass.KILLED  # the retry of a killed one
    assert (closed[SMALL].attempt, closed[SMALL].attempts) == (1, 0)  # given back
    assert closed[SMALL].error_class is ErrorClass.INTERRUPTED
    assert row(ledger, OTHER)[0] is Status.RUNNING
    assert ledger.close_attempts("j", "run1") == []  # closed once


def test_a_unit_that_ended_otherwise_gives_every_attempt_back(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path)
    ledger.mark_running("j", HUGE, "run1")
    (closed,) = ledger.close_attempts("j", "run1")  # e.g. RuntimeMaxSec: result "timeout"
    assert (closed.error_class, closed.attempts) == (ErrorClass.INTERRUPTED, 0)


def test_the_daemon_journals_each_closed_attempt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "in").mkdir()
    config = parse_config(
        {"state_dir": str(tmp_path / "state"),
         "jobs": {"j": {"input": str(tmp_path / "in"), "max_attempts": 2}}},
        tmp_path / "c.toml",
    )  # fmt: skip
    attempts = LedgerAttempts(config.state_dir)
    assert attempts.close(config.job("j"), "run1", UNIT, "oom-kill") == 0  # no ledger: none made
    assert not (tmp_path / "state").exists()
    ledger = open_ledger(tmp_path)
    ledger.mark_running("j", HUGE, "run1")
    ledger.record("j", HUGE, Failure(ErrorClass.KILLED, "worker killed by SIGKILL", True))
    ledger.mark_running("j", HUGE, "run1")  # the retry, alone; killed with its runner
    with caplog.at_level(logging.INFO):
        assert attempts.close(config.job("j"), "run1", "lexi-pipeline-run1-2.service",
                              "oom-kill") == 1  # fmt: skip
    (entry,) = [r for r in caplog.records if getattr(r, "lexi_outcome", None)]
    assert entry.__dict__.items() >= {
        "lexi_job": "j", "lexi_run": "run1", "lexi_document": HUGE, "lexi_outcome": "failed",
        "lexi_error_class": "killed", "message_id": journal.DOCUMENT_FINISHED,
    }.items()  # fmt: skip  # attempt 2 of max_attempts 2: no retry
    assert "huge.txt killed" in entry.getMessage() and "attempt 2, counts" in (entry.getMessage())
    assert row(ledger, HUGE) == (Status.FAILED, 2, "killed")


def test_the_next_job_unit_reports_what_it_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """run_job's part: start_run closes the dead unit's attempts; each becomes an event the
    job unit's reporters write: one journal entry, one line in the run's event file."""
    ledger = open_ledger(tmp_path)
    ledger.mark_running("j", SMALL, "run1")
    closed = ledger.start_run("j", "run1", 2)  # the daemon's next unit of the run
    events: list[Event] = []
    report_closed(closed, 2, events.append)
    assert events == [AttemptClosed(closed[0], retry=True)]
    event_file = EventFile(tmp_path / "run1.jsonl", "j")
    reporter = JournalReporter("j", "run1")
    with caplog.at_level(logging.INFO):
        for event in events:
            reporter(event)
            event_file(event)
    event_file.close()
    (entry,) = caplog.records
    fields = vars(entry)  # the journal fields, set through `extra`
    assert (fields["lexi_outcome"], fields["lexi_error_class"]) == ("retry", "interrupted")
    assert "(attempt 1, given back) · will retry" in entry.getMessage()
    (line,) = (tmp_path / "run1.jsonl").read_text().splitlines()
    assert json.loads(line)["event"] == "closed"


def test_closed_fields_name_the_run_that_made_the_attempt() -> None:
    attempt = ClosedAttempt("j", HUGE, "old-run", 1, 0, ErrorClass.INTERRUPTED, "ended")
    assert closed_fields(AttemptClosed(attempt, retry=True)) == {
        "lexi_job": "j", "lexi_run": "old-run", "lexi_document": HUGE, "lexi_outcome": "retry",
        "lexi_error_class": "interrupted",
    }  # fmt: skip
