"""The runner pausing on an outage, with real worker processes and a stand-in dependency.

The dependency is a flag file: while it exists, the stage fails with OutageError and the
probe says "down". The real graph store and model API are in test_outages.py.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from lexi_maint.errors import Dependency, ErrorClass, OutageError
from lexi_maint.pipeline.contract import Chunk, Stage, Work
from lexi_maint.probe import Health
from lexi_maint.run.events import DocumentStarted, Event, RunSummary
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.memory import MemoryReading
from lexi_maint.run.outage import OutageGuard, OutagePolicy
from lexi_maint.run.plan import Found, Status, plan
from lexi_maint.run.runner import Runner, RunnerSettings

pytestmark = pytest.mark.integration


class NeedsTheFlagGone:
    name = "store"

    def __init__(self, flag: Path, lying: bool = False) -> None:
        self.flag = flag
        self.lying = lying  # claims an outage although the dependency is up

    def run(self, work: Work) -> Work:
        time.sleep(0.05)
        if self.flag.exists() or (self.lying and work.source.path.name.startswith("liar")):
            raise OutageError(Dependency.GRAPH, ErrorClass.GRAPH, "store unreachable")
        chunk = Chunk(id="c", index=0, start=0, end=1, heading="", text="x")
        return replace(work, chunks=(chunk,))


def run(
    tmp_path: Path,
    names: Sequence[str],
    *,
    budget: float,
    down_for: float | None = None,
    down_at_start: bool = False,
    lying: bool = False,
) -> tuple[Ledger, RunSummary, dict[str, int]]:
    root = tmp_path / "in"
    root.mkdir(exist_ok=True)
    found = []
    for name in names:
        (root / name).write_text(name)
        found.append(Found(str(root / name), f"sha-{name}", len(name)))
    flag = tmp_path / "down"
    if down_at_start:
        flag.write_text("")
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    ledger.start_run("j", "r1", os.getpid())
    decisions = plan(found, ledger.known("j"), reprocess=False, max_attempts=3)
    ledger.apply_plan("j", found, decisions)
    starts: dict[str, int] = {}
    outages = [] if down_for is None or down_at_start else [down_for]

    def on_event(event: Event) -> None:
        if isinstance(event, DocumentStarted):
            starts[Path(event.path).name] = starts.get(Path(event.path).name, 0) + 1
            if outages and len(starts) == 3:  # the dependency goes down under the third one
                flag.write_text("")
                threading.Timer(outages.pop(), lambda: flag.unlink(missing_ok=True)).start()

    if down_at_start and down_for is not None:
        threading.Timer(down_for, lambda: flag.unlink(missing_ok=True)).start()
    guard = OutageGuard(
        OutagePolicy(budget=budget, first_delay=0.1, max_delay=0.4),
        {Dependency.GRAPH: lambda: Health(not flag.exists(), "flag file present")},
    )
    stages: list[Stage] = [NeedsTheFlagGone(flag, lying)]
    settings = RunnerSettings("j", root, 2, 3, 60.0, 0.7)
    runner = Runner(
        settings, ledger, "r1", lambda: stages, lambda: MemoryReading(1, 100, "t"),
        on_event, None, guard,
    )  # fmt: skip
    summary = runner.run(found, decisions, 0)
    flag.unlink(missing_ok=True)
    return ledger, summary, starts


def rows(ledger: Ledger) -> dict[str, tuple[Status, int]]:
    return {Path(r.path).name: (r.status, r.attempts) for r in ledger.documents("j")}


NAMES = [f"d{i}.txt" for i in range(8)]


def test_an_outage_shorter_than_the_budget_pauses_and_costs_no_attempt(tmp_path: Path) -> None:
    ledger, summary, starts = run(tmp_path, NAMES, budget=30.0, down_for=1.0)
    assert summary.exit_code == 0 and summary.done == len(NAMES)
    assert set(rows(ledger).values()) == {(Status.DONE, 1)}  # every attempt given back
    assert max(starts.values()) > 1  # some documents did meet the outage


def test_an_outage_longer_than_the_budget_stops_the_run_and_leaves_them_pending(
    tmp_path: Path,
) -> None:
    ledger, summary, _ = run(tmp_path, NAMES, budget=1.0, down_for=60.0)
    assert summary.exit_code == 3
    assert "graph store unavailable since" in summary.stopped
    assert "outage budget of 1 s spent" in summary.stopped
    states = rows(ledger)
    pending = [name for name, (status, _) in states.items() if status is Status.PENDING]
    assert summary.left_pending == len(pending) > 0
    assert all(attempts == 0 for status, attempts in states.values() if status is Status.PENDING)
    assert not any(status is Status.FAILED for status, _ in states.values())
    # the next run takes them, without --reprocess
    ledger.close()
    ledger, summary, _ = run(tmp_path, NAMES, budget=1.0)
    assert summary.exit_code == 0
    assert {status for status, _ in rows(ledger).values()} == {Status.DONE}


def test_a_dependency_down_at_the_start_delays_the_first_document(tmp_path: Path) -> None:
    started = time.monotonic()
    ledger, summary, starts = run(tmp_path, NAMES[:3], budget=30.0, down_for=1.0,
                                  down_at_start=True)  # fmt: skip
    assert summary.exit_code == 0 and time.monotonic() - started >= 1.0
    assert set(starts.values()) == {1}  # nothing started while it was down
    assert set(rows(ledger).values()) == {(Status.DONE, 1)}


def test_a_claimed_outage_the_probe_disproves_uses_up_attempts(tmp_path: Path) -> None:
    ledger, summary, _ = run(tmp_path, ["liar.txt", "ok.txt"], budget=30.0, lying=True)
    assert rows(ledger) == {"liar.txt": (Status.FAILED, 3), "ok.txt": (Status.DONE, 1)}
    assert summary.exit_code == 1
