"""Closing the attempts a job unit left open, once it is gone (the daemon's part).

A job unit can end before its runner records every attempt: OOMPolicy=stop ends the whole
unit after an OOM kill, and the runner may be killed with it (TimeoutStopSec, or the OOM
killer itself); RuntimeMaxSec or a signal do the same. The ledger then still says those
documents are `running`. The daemon, which outlives every unit, closes them as soon as the
unit is gone: the ledger decides what each attempt counts (killed, or interrupted with the
attempt given back; a document alone in an OOM-killed unit was the kernel's victim), folds
in what its model calls cost, and each gets its one LEXI_OUTCOME journal entry, with the
run that made the attempt, the attempt's number and why it ended.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from lexi_maint.config import JobConfig
from lexi_maint.errors import LexiMaintError
from lexi_maint.report.reporters import journal_closed
from lexi_maint.run.events import AttemptClosed
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_rows import ClosedAttempt
from lexi_maint.state import StatePaths

log = logging.getLogger(__name__)


class AttemptsPort(Protocol):
    def close(self, job: JobConfig, run_id: str, unit: str, result: str) -> int:
        """Close what job unit `unit` (ended with `result`) left running; how many."""
        ...


def report(closed: list[ClosedAttempt], max_attempts: int) -> None:
    for attempt in closed:
        journal_closed(AttemptClosed(attempt, retry=attempt.attempts < max_attempts), "run")


class LedgerAttempts:
    """The real port: the job's ledger in state_dir (never created here, as root)."""

    def __init__(self, state_dir: Path) -> None:
        self._ledger = StatePaths(state_dir).ledger

    def close(self, job: JobConfig, run_id: str, unit: str, result: str) -> int:
        if not self._ledger.exists():
            return 0
        oom_unit = unit if result == "oom-kill" else ""
        try:
            with Ledger.open(self._ledger, spend_journal=job.llm.cache_path) as ledger:
                closed = ledger.close_attempts(job.name, run_id, oom_unit=oom_unit)
        except LexiMaintError as exc:
            log.error("run %s: cannot close the attempts %s left open: %s", run_id, unit, exc)
            return 0
        report(closed, job.max_attempts)
        return len(closed)


class FakeAttempts:
    """Records what the executor asked to close (unit tests)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, str]] = []

    def close(self, job: JobConfig, run_id: str, unit: str, result: str) -> int:
        self.calls.append((job.name, run_id, unit, result))
        return 0
