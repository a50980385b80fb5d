"""Telling an outage from a bad document, and waiting one out (no processes, no I/O).

A worker reports a failure as an outage (`Failure.outage`) when the graph store, the model
API or the disk failed it, not its content. That is a claim; `OutageGuard` checks it with
the dependency's probe:

- the attempt started before the dependency last came back: the same outage, given back;
- the dependency is paused already: given back;
- otherwise it is probed at once. Down (or found dead and restarted): an outage, the attempt
  is given back. Up: the claim does not hold (the dependency answers others), so the
  failure counts against the document like any retryable one.

While a dependency is down the runner starts no documents and probes it with backoff
(`OutagePolicy.first_delay` doubling up to `max_delay`). Once it answers, the run goes on.
If it has been down for longer than `budget` seconds, the run stops (`Verdict.GIVE_UP`).
The outage clock is kept across a recovery until a document succeeds, so a store that comes
back only to fail again at once (a full disk) cannot hold a run forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from lexi_maint.errors import Dependency
from lexi_maint.probe import Probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutagePolicy:
    budget: float = 900.0  # seconds a dependency may stay down before the run stops
    first_delay: float = 1.0
    max_delay: float = 30.0


class Verdict(Enum):
    WAIT = "wait"  # still down, within the budget: probe again later
    RESUMED = "resumed"  # every dependency answers: start documents again
    GIVE_UP = "give_up"  # down past the budget: stop the run


@dataclass
class _State:
    since_wall: float | None = None  # when the outage began (kept until a document succeeds)
    since: float | None = None  # the same on the monotonic clock
    paused: bool = False
    next_probe: float = 0.0
    delay: float = 0.0
    recovered_at: float = float("-inf")
    detail: str = ""


class OutageGuard:
    """Per dependency: is it down, when to probe it next, and when to give up."""

    def __init__(
        self,
        policy: OutagePolicy,
        probes: Mapping[Dependency, Probe],
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self._probes = dict(probes)
        self._clock = clock
        self._wall = wall
        self._states = {dependency: _State() for dependency in self._probes}

    @property
    def paused(self) -> bool:
        return any(state.paused for state in self._states.values())

    def check_all(self) -> None:
        """Probe every dependency once (at the start of a run); pause on those that are down."""
        for dependency in self._probes:
            self._probe_now(dependency)

    def failed(self, dependency: Dependency, attempt_started: float) -> bool:
        """A document's attempt (started at `attempt_started`, monotonic) failed because
        `dependency` looked down. True: an outage, give the attempt back."""
        state = self._states.get(dependency)
        if state is None:  # nothing to check the claim with: the document's own failure
            return False
        if state.paused or attempt_started <= state.recovered_at:
            return True
        return self._probe_now(dependency)

    def document_succeeded(self) -> None:
        """A document went through: every outage that had recovered is over for good."""
        for state in self._states.values():
            if not state.paused:
                state.since = state.since_wall = None

    def next_probe_in(self) -> float | None:
        """Seconds until the next probe is due, None when nothing is paused."""
        due = [state.next_probe for state in self._states.values() if state.paused]
        return max(min(due) - self._clock(), 0.0) if due else None

    def probe_due(self) -> Verdict:
        """Probe every paused dependency whose time has come; say what the runner does."""
        now = self._clock()
        for dependency, state in self._states.items():
            if state.paused and now >= state.next_probe:
                self._probe_now(dependency)
        if not self.paused:
            return Verdict.RESUMED
        return Verdict.GIVE_UP if self._over_budget() else Verdict.WAIT

    def describe(self) -> str:
        """One line naming what is down, since when and the last probe's finding."""
        parts = []
        for dependency, state in self._states.items():
            if state.paused and state.since_wall is not None:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(state.since_wall))
                parts.append(f"{dependency.value} unavailable since {since} ({state.detail})")
        return "; ".join(parts)

    # -- inside --------------------------------------------------------------------------

    def _probe_now(self, dependency: Dependency) -> bool:
        """Probe; update the state; True when the dependency was found down (or revived)."""
        state = self._states[dependency]
        health = self._probes[dependency]()
        now = self._clock()
        if health.up and not health.revived:
            if state.paused:
                log.warning("%s answers again after %.1f s of outage", dependency.value,
                            now - (state.since or now))  # fmt: skip
                state.paused = False
                state.recovered_at = now
            return False
        if state.since is None:
            state.since, state.since_wall = now, self._wall()
        state.detail = health.detail
        if health.up:  # revived: down a moment ago, back now
            log.warning("%s was down and is back: %s", dependency.value, health.detail)
            state.paused = False
            state.recovered_at = now
            return True
        if not state.paused:
            log.warning("%s is unavailable (%s); no new documents start until it answers "
                        "(outage budget %g s)", dependency.value, health.detail,
                        self.policy.budget)  # fmt: skip
            state.paused = True
            state.delay = self.policy.first_delay
        else:
            state.delay = min(state.delay * 2, self.policy.max_delay)
        # probe once more when the budget runs out, so giving up is decided by a probe
        state.next_probe = min(now + state.delay, state.since + self.policy.budget)
        return True

    def _over_budget(self) -> bool:
        now = self._clock()
        return any(
            state.paused and state.since is not None and now - state.since >= self.policy.budget
            for state in self._states.values()
        )
