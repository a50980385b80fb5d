"""The job lifecycle as an explicit state machine: phases and allowed transitions, no I/O.

    queued ─► preflight ─► quiesce ─► run ─► restore ─► done | failed | cancelled
       │          │            │                 ▲
       │          └─► failed   └─────────────────┘ (restore follows whatever happened)
       └─► cancelled

`quiesce` stops the service or shrinks its gunicorn (the job's quiesce mode, decided in
lifecycle.quiesce); `restore` starts it again or grows it back.
`interrupted` is set on a run found held by a daemon that died (or a reboot).
"""

from __future__ import annotations

from enum import StrEnum

from lexi_maint.errors import TransitionError


class Phase(StrEnum):
    QUEUED = "queued"
    PREFLIGHT = "preflight"
    QUIESCE = "quiesce"
    RUN = "run"
    RESTORE = "restore"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINAL = frozenset({Phase.DONE, Phase.FAILED, Phase.CANCELLED, Phase.INTERRUPTED})

TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.QUEUED: frozenset({Phase.PREFLIGHT, Phase.CANCELLED}),
    Phase.PREFLIGHT: frozenset({Phase.QUIESCE, Phase.FAILED, Phase.CANCELLED}),
    Phase.QUIESCE: frozenset({Phase.RUN, Phase.RESTORE}),
    Phase.RUN: frozenset({Phase.RESTORE}),
    Phase.RESTORE: frozenset({Phase.DONE, Phase.FAILED, Phase.CANCELLED}),
    Phase.DONE: frozenset(),
    Phase.FAILED: frozenset(),
    Phase.CANCELLED: frozenset(),
    Phase.INTERRUPTED: frozenset(),
}


class Machine:
    def __init__(self) -> None:
        self.phase = Phase.QUEUED

    def advance(self, to: Phase) -> None:
        if to not in TRANSITIONS[self.phase]:
            raise TransitionError(f"lifecycle cannot go from {self.phase} to {to}")
        self.phase = to

    @property
    def final(self) -> bool:
        return self.phase in FINAL


def final_phase(*, cancelled: bool, succeeded: bool) -> Phase:
    """Where a run ends after restore: cancel wins, then success or failure."""
    if cancelled:
        return Phase.CANCELLED
    return Phase.DONE if succeeded else Phase.FAILED
