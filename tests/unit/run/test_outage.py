"""OutageGuard: telling an outage from a bad document, backoff, the budget (fake clock)."""

from __future__ import annotations

from lexi_maint.errors import Dependency
from lexi_maint.probe import Health
from lexi_maint.run.outage import OutageGuard, OutagePolicy, Verdict

GRAPH = Dependency.GRAPH


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A probe that answers from a list (the last answer repeats) and counts its calls."""

    def __init__(self, *answers: Health) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self) -> Health:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


UP, DOWN = Health(True), Health(False, "connection refused")


def guard(probe: Scripted, clock: Clock, budget: float = 60.0) -> OutageGuard:
    policy = OutagePolicy(budget=budget, first_delay=1.0, max_delay=8.0)
    return OutageGuard(policy, {GRAPH: probe}, clock=clock, wall=lambda: 0.0)


def test_a_claim_the_probe_disproves_counts_against_the_document() -> None:
    clock, probe = Clock(), Scripted(UP)
    g = guard(probe, clock)
    assert g.failed(GRAPH, attempt_started=99.0) is False
    assert not g.paused and probe.calls == 1


def test_a_confirmed_outage_pauses_until_the_probe_answers() -> None:
    clock, probe = Clock(), Scripted(DOWN, DOWN, DOWN, UP)
    g = guard(probe, clock)
    assert g.failed(GRAPH, attempt_started=99.0) is True
    assert g.paused and g.next_probe_in() == 1.0
    assert g.probe_due() is Verdict.WAIT and probe.calls == 1  # not due yet: no probe
    clock.now += 1.0
    assert g.probe_due() is Verdict.WAIT and g.next_probe_in() == 2.0  # backoff doubles
    clock.now += 2.0
    assert g.probe_due() is Verdict.WAIT and g.next_probe_in() == 4.0
    # a second document failing meanwhile is part of the same outage: no probe
    assert g.failed(GRAPH, attempt_started=99.5) is True and probe.calls == 3
    clock.now += 4.0
    assert g.probe_due() is Verdict.RESUMED and not g.paused


def test_a_failure_of_an_attempt_started_before_the_recovery_is_given_back() -> None:
    clock, probe = Clock(), Scripted(DOWN, UP)
    g = guard(probe, clock)
    g.failed(GRAPH, attempt_started=99.0)
    clock.now += 1.0
    assert g.probe_due() is Verdict.RESUMED
    calls = probe.calls
    assert g.failed(GRAPH, attempt_started=99.5) is True  # it was writing when it broke
    assert probe.calls == calls and not g.paused
    assert g.failed(GRAPH, attempt_started=clock.now + 0.1) is False  # a fresh one is probed


def test_a_revived_server_is_an_outage_that_is_already_over() -> None:
    clock = Clock()
    g = guard(Scripted(Health(True, "restarted", revived=True)), clock)
    assert g.failed(GRAPH, attempt_started=99.0) is True
    assert not g.paused


def test_down_past_the_budget_gives_up_and_names_the_dependency() -> None:
    clock, probe = Clock(), Scripted(DOWN)
    g = guard(probe, clock, budget=10.0)
    g.failed(GRAPH, attempt_started=99.0)
    verdicts: list[Verdict] = []
    while (wait := g.next_probe_in()) is not None and len(verdicts) < 20:
        clock.now += wait
        verdicts.append(g.probe_due())
        if verdicts[-1] is Verdict.GIVE_UP:
            break
    assert verdicts[-1] is Verdict.GIVE_UP
    assert clock.now - 100.0 == 10.0  # the last probe falls on the end of the budget
    assert "graph store unavailable since" in g.describe()
    assert "connection refused" in g.describe()


def test_the_outage_clock_runs_on_until_a_document_succeeds() -> None:
    clock, probe = Clock(), Scripted(DOWN, UP, DOWN)
    g = guard(probe, clock, budget=5.0)
    g.failed(GRAPH, attempt_started=99.0)
    clock.now += 1.0
    assert g.probe_due() is Verdict.RESUMED
    clock.now += 5.0  # it fails again at once, with no document through in between
    assert g.failed(GRAPH, attempt_started=clock.now - 0.1) is True
    clock.now += g.next_probe_in() or 0.0
    assert g.probe_due() is Verdict.GIVE_UP


def test_a_success_resets_the_outage_clock() -> None:
    clock, probe = Clock(), Scripted(DOWN, UP, DOWN)
    g = guard(probe, clock, budget=5.0)
    g.failed(GRAPH, attempt_started=99.0)
    clock.now += 1.0
    assert g.probe_due() is Verdict.RESUMED
    g.document_succeeded()
    clock.now += 5.0
    assert g.failed(GRAPH, attempt_started=clock.now - 0.1) is True
    clock.now += g.next_probe_in() or 0.0
    assert g.probe_due() is Verdict.WAIT


def test_check_all_pauses_on_a_dependency_down_at_the_start() -> None:
    clock = Clock()
    g = guard(Scripted(DOWN), clock)
    g.check_all()
    assert g.paused


def test_a_claim_about_a_dependency_without_a_probe_is_not_believed() -> None:
    g = guard(Scripted(UP), Clock())
    assert g.failed(Dependency.DISK, attempt_started=99.0) is False
