"""What a run reports while it goes: plain values consumed by the CLI, the journal, sd_notify."""

from __future__ import annotations

from dataclasses import dataclass, field

from lexi_maint.errors import ExitCode
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Outcome
from lexi_maint.run.ledger_rows import ClosedAttempt
from lexi_maint.run.memory import MemoryReading


@dataclass(frozen=True)
class RunStarted:
    job: str
    run_id: str
    total: int  # documents selected by the patterns
    queued: int  # documents this run will process
    unchanged: int  # done earlier with the same content
    exhausted: int  # failed max_attempts times with this content
    vanished: int  # in the ledger but gone from the input directory
    interrupted: int  # left running by a run that died


@dataclass(frozen=True)
class DocumentStarted:
    path: str
    attempt: int
    pid: int
    solo: bool


@dataclass(frozen=True)
class DocumentFinished:
    path: str
    outcome: Outcome
    attempt: int
    seconds: float
    requeued: bool
    done: int
    failed: int
    finished: int  # documents settled so far in this run
    queued: int  # documents this run processes in all
    eta_seconds: float | None


@dataclass(frozen=True)
class AttemptClosed:
    """An attempt whose runner did not record its end (its job unit or run died first),
    closed when the next job unit or run of the job found it `running` in the ledger."""

    attempt: ClosedAttempt
    retry: bool  # the document is tried again (attempts left); else it stays failed


@dataclass(frozen=True)
class MemoryHeld:
    reading: MemoryReading
    running: int


@dataclass(frozen=True)
class RunSummary:
    job: str
    run_id: str
    total: int
    processed: int
    done: int
    failed: int
    unchanged: int
    exhausted: int
    vanished: int
    failed_in_ledger: int  # documents of the job whose ledger status is failed after the run
    seconds: float
    usage: Usage = field(default_factory=Usage)  # model calls of every attempt in this run
    stopped: str = ""  # why the job stopped early (API key rejected, no balance), else ""
    left_pending: int = 0  # documents the stop left pending
    signal: str = ""  # the signal that interrupted the run ("SIGINT"), else ""

    @property
    def exit_code(self) -> int:
        """0 all done; 1 documents failed; 3 the job was stopped (it could not proceed)."""
        if self.stopped:
            return ExitCode.UNAVAILABLE
        return ExitCode.FAILED if self.failed_in_ledger else ExitCode.OK

    def to_json(self) -> dict[str, object]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "total": self.total,
            "processed": self.processed,
            "done": self.done,
            "failed": self.failed,
            "unchanged": self.unchanged,
            "exhausted": self.exhausted,
            "vanished": self.vanished,
            "failed_in_ledger": self.failed_in_ledger,
            "seconds": round(self.seconds, 3),
            "llm": self.usage.to_json(),
            "stopped": self.stopped,
            "left_pending": self.left_pending,
            "signal": self.signal,
        }


@dataclass(frozen=True)
class JobStopped:
    """A document failed in a way every document would (e.g. the API key was rejected)."""

    path: str  # the document that hit it; "" when a dependency stayed down too long
    reason: str
    released: int  # running documents stopped and put back to pending


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


Event = (
    RunStarted
    | DocumentStarted
    | DocumentFinished
    | AttemptClosed
    | MemoryHeld
    | JobStopped
    | RunFinished
)
