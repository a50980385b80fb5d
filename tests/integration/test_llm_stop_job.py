"""A worker's JobStopError stops the whole job: the runner with real worker processes."""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from lexi_maint.errors import ErrorClass, JobStopError
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.run.events import DocumentStarted, Event, JobStopped, RunFinished
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.memory import MemoryReading
from lexi_maint.run.plan import Found, Status, plan
from lexi_maint.run.runner import Runner, RunnerSettings

pytestmark = pytest.mark.integration


class StopOn:
    """Documents named *-stop raise JobStopError; *-slow ones run until they are killed."""

    name = "fake"

    def __init__(self, error: JobStopError) -> None:
        self.error = error

    def run(self, work: Work) -> Work:
        name = work.source.path.name
        if "-stop" in name:
            _wait_for_the_others(work.source.path.parent)
            raise self.error
        if "-slow" in name:
            (work.source.path.parent / f"{name}.started").touch()
            time.sleep(60)
        chunk = Chunk(id=f"{name}:0", index=0, start=0, end=1, heading="", text="x")
        return replace(work, chunks=(chunk,))


def _wait_for_the_others(root: Path) -> None:
    """Until a-done is recorded done and both slow documents run: the scene the tests assert."""
    ledger = root.parent / "ledger.sqlite3"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT status FROM documents WHERE path LIKE '%a-done.txt'"
            ).fetchone()
        slow_running = all((root / f"{n}.started").exists() for n in ("b-slow.txt", "d-slow.txt"))
        if row is not None and row[0] == "done" and slow_running:
            return
        time.sleep(0.02)
    raise AssertionError("a-done did not finish or the slow documents did not start in 60 s")


def run(tmp_path: Path, names: list[str], error: JobStopError) -> tuple[Ledger, list[Event]]:
    root = tmp_path / "in"
    root.mkdir()
    found = []
    for name in names:
        (root / name).write_text(name)
        found.append(Found(str(root / name), f"sha-{name}", len(name)))
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    ledger.start_run("j", "r1", os.getpid())
    decisions = plan(found, {}, reprocess=False, max_attempts=3)
    ledger.apply_plan("j", found, decisions)
    events: list[Event] = []
    settings = RunnerSettings("j", root, 3, 3, 120.0, 0.7)
    Runner(
        settings, ledger, "r1", lambda: (StopOn(error),), lambda: MemoryReading(1, 100, "t"),
        events.append,
    ).run(found, decisions, 0)  # fmt: skip
    return ledger, events


def rows(ledger: Ledger) -> dict[str, tuple[Status, int, str | None]]:
    return {Path(r.path).name: (r.status, r.attempts, r.error_class) for r in ledger.documents("j")}


NAMES = ["a-done.txt", "b-slow.txt", "c-stop.txt", "d-slow.txt", "e.txt", "f.txt"]


def test_no_balance_stops_the_job_and_leaves_the_rest_pending(tmp_path: Path) -> None:
    error = JobStopError(ErrorClass.LLM_BALANCE, "insufficient balance (HTTP 402)", retryable=True)
    ledger, events = run(tmp_path, NAMES, error)
    assert rows(ledger) == {
        "a-done.txt": (Status.DONE, 1, None),
        "b-slow.txt": (Status.PENDING, 0, None),  # killed while running: attempt not counted
        "c-stop.txt": (Status.PENDING, 0, "llm_balance"),  # the reason stays visible
        "d-slow.txt": (Status.PENDING, 0, None),
        "e.txt": (Status.PENDING, 0, None),  # never started
        "f.txt": (Status.PENDING, 0, None),
    }
    stopped = [e for e in events if isinstance(e, JobStopped)]
    assert len(stopped) == 1
    assert stopped[0].path.endswith("c-stop.txt") and stopped[0].released == 2
    summary = next(e for e in events if isinstance(e, RunFinished)).summary
    assert summary.stopped == "insufficient balance (HTTP 402)"
    assert (summary.done, summary.left_pending, summary.exit_code) == (1, 5, 3)
    started = [e.path for e in events if isinstance(e, DocumentStarted)]
    assert not {Path(p).name for p in started} & {"e.txt", "f.txt"}


def test_a_rejected_key_fails_its_document_and_stops_the_job(tmp_path: Path) -> None:
    error = JobStopError(ErrorClass.LLM_AUTH, "the API key was rejected (HTTP 401)")
    ledger, events = run(tmp_path, NAMES, error)
    table = rows(ledger)
    assert table["c-stop.txt"] == (Status.FAILED, 1, "llm_auth")
    assert table["b-slow.txt"] == table["d-slow.txt"] == table["e.txt"] == (Status.PENDING, 0, None)
    summary = next(e for e in events if isinstance(e, RunFinished)).summary
    assert (summary.failed, summary.left_pending, summary.exit_code) == (1, 4, 3)
