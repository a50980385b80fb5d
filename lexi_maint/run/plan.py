"""Pure planning: which documents a run processes, given the ledger and the input folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Found:
    """A file the patterns selected (sha256 is "" when it could not be hashed)."""

    path: str
    sha256: str
    size: int
    problem: str = ""  # why it was not hashed (not a regular file, too large, sparse, ...)


@dataclass(frozen=True)
class Known:
    """What the ledger holds for a document of the job."""

    path: str
    sha256: str
    status: Status
    attempts: int
    error_class: str | None = None


KILLED = "killed"


class Action(StrEnum):
    PROCESS = "process"  # queue it for a worker
    UNCHANGED = "unchanged"  # done with the same content: nothing to do
    EXHAUSTED = "exhausted"  # failed max_attempts times with this content: left alone
    VANISHED = "vanished"  # in the ledger, no longer in the input folder


@dataclass(frozen=True)
class Decision:
    path: str
    action: Action
    reset_attempts: bool = False  # content changed or --reprocess: start counting again
    solo: bool = False  # its worker was killed last time (OOM?): run it last, alone


def plan(
    found: Sequence[Found],
    known: Mapping[str, Known],
    *,
    reprocess: bool,
    max_attempts: int,
) -> list[Decision]:
    """Decide per document: found files in their given order, those whose worker was
    killed last time after all others; then vanished ones."""
    decisions = [_decide(f, known.get(f.path), reprocess, max_attempts) for f in found]
    decisions.sort(key=lambda d: d.solo)  # stable: the given order within each group
    present = {f.path for f in found}
    decisions.extend(
        Decision(path, Action.VANISHED)
        for path, k in sorted(known.items())
        if path not in present and k.status is not Status.SKIPPED
    )
    return decisions


def _decide(found: Found, known: Known | None, reprocess: bool, max_attempts: int) -> Decision:
    if known is None:
        return Decision(found.path, Action.PROCESS, reset_attempts=True)
    changed = found.sha256 != known.sha256
    if reprocess or changed:
        return Decision(found.path, Action.PROCESS, reset_attempts=True)
    if known.status is Status.DONE:
        return Decision(found.path, Action.UNCHANGED)
    if known.status is Status.FAILED and known.attempts >= max_attempts:
        return Decision(found.path, Action.EXHAUSTED)
    return Decision(found.path, Action.PROCESS, solo=known.error_class == KILLED)
