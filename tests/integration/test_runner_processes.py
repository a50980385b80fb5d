"""The runner with real worker processes and small stand-in stages (no graph, no parsing)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline.contract import Chunk, Failure, Stage, Work
from lexi_maint.run.events import DocumentFinished, DocumentStarted, Event, MemoryHeld, RunFinished
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.memory import MemoryReading
from lexi_maint.run.plan import Found, Status, plan
from lexi_maint.run.runner import Runner, RunnerSettings
from lexi_maint.run.stop import Stopped, StopSignal

pytestmark = pytest.mark.integration

LOW = MemoryReading(10, 100, "test")
BIG = 32 * 2**20


class ByName:
    """A stage whose behaviour depends on the document's file name."""

    name = "fake"

    def __init__(self, marker_dir: Path) -> None:
        self.marker_dir = marker_dir

    def run(self, work: Work) -> Work:
        name = work.source.path.name
        if name.startswith("bad"):
            raise DocumentError(ErrorClass.EMPTY, f"{name} is bad")
        if name.startswith("crash"):
            raise ValueError("bug in a stage")
        if name.startswith("score"):  # what the kernel would weigh this worker with
            (self.marker_dir / name).write_text(Path("/proc/self/oom_score_adj").read_text())
        if name.startswith("hang"):
            time.sleep(30)
        if name.startswith("big"):  # 32 MiB of its own, touched page by page
            held = bytearray(BIG)
            for offset in range(0, BIG, 4096):
                held[offset] = 1
        if name.startswith("oomed"):  # the OOM killer strikes as the unit stops: SIGKILL
            signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGKILL))
            (self.marker_dir / name).write_text("armed")
            time.sleep(30)
        if name.startswith("slow"):
            marker = self.marker_dir / name
            if not marker.exists():  # first attempt: slow enough to be killed by the test
                marker.write_text("seen")
                time.sleep(20)
        time.sleep(0.05)
        chunk = Chunk(id=f"{name}:0", index=0, start=0, end=1, heading="", text="x")
        return replace(work, chunks=(chunk,))


def make_factory(marker_dir: Path) -> Callable[[], Sequence[Stage]]:
    return lambda: (ByName(marker_dir),)


def setup_job(tmp_path: Path, names: list[str]) -> tuple[Ledger, list[Found]]:
    root = tmp_path / "in"
    root.mkdir()
    found = []
    for name in names:
        (root / name).write_text(name)
        found.append(Found(str(root / name), f"sha-{name}", len(name)))
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    return ledger, found


def run(
    tmp_path: Path,
    names: list[str],
    *,
    workers: int = 2,
    timeout: float = 60.0,
    probe: Callable[[], MemoryReading] = lambda: LOW,
    on_event: Callable[[Event], None] | None = None,
    stop: StopSignal | None = None,
) -> tuple[Ledger, list[Event]]:
    ledger, found = setup_job(tmp_path, names)
    events: list[Event] = []

    def record(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    settings = RunnerSettings("j", tmp_path / "in", workers, 3, timeout, 0.7)
    ledger.start_run("j", "r1", os.getpid())
    decisions = plan(found, ledger.known("j"), reprocess=False, max_attempts=3)
    ledger.apply_plan("j", found, decisions)
    markers = tmp_path / "markers"
    markers.mkdir()
    runner = Runner(settings, ledger, "r1", make_factory(markers), probe, record, stop)
    runner.run(found, decisions, 0)
    return ledger, events


def statuses(ledger: Ledger) -> dict[str, tuple[Status, int, str | None]]:
    return {Path(r.path).name: (r.status, r.attempts, r.error_class) for r in ledger.documents("j")}


def test_failures_cost_one_document_and_the_job_goes_on(tmp_path: Path) -> None:
    ledger, events = run(tmp_path, ["a.txt", "bad.txt", "crash.txt", "d.txt"])
    assert statuses(ledger) == {
        "a.txt": (Status.DONE, 1, None),
        "bad.txt": (Status.FAILED, 1, "empty"),
        "crash.txt": (Status.FAILED, 1, "internal"),
        "d.txt": (Status.DONE, 1, None),
    }
    summary = next(e for e in events if isinstance(e, RunFinished)).summary
    assert (summary.done, summary.failed, summary.exit_code) == (2, 2, 1)
    crash = ledger.document("j", str(tmp_path / "in" / "crash.txt"))
    assert "ValueError: bug in a stage" in (crash.error_message or "")
    assert (ledger.document("j", str(tmp_path / "in" / "a.txt")).peak_rss or 0) > 0
    assert crash.peak_own is not None and crash.peak_rss is not None  # a failure measures too


def test_a_worker_reports_its_own_peak_apart_from_the_pages_it_shares(tmp_path: Path) -> None:
    ledger, _ = run(tmp_path, ["a.txt", "big.txt"])
    small, big = (ledger.document("j", str(tmp_path / "in" / n)) for n in ("a.txt", "big.txt"))
    assert small.peak_rss is not None and small.peak_own is not None
    assert big.peak_rss is not None and big.peak_own is not None
    # forked from this test process: most of its resident memory is the parent's pages
    assert big.peak_rss - big.peak_own > 10 * 2**20
    assert big.peak_own >= BIG > small.peak_own  # its own 32 MiB counted, the parent's not
    assert big.peak_own - small.peak_own >= BIG - 2**20


def test_a_worker_killed_by_sigkill_is_retried_once_alone(tmp_path: Path) -> None:
    concurrent: list[int] = []
    running: set[str] = set()

    def kill_slow(event: Event) -> None:
        if isinstance(event, DocumentStarted):
            running.add(event.path)
            concurrent.append(len(running))
            if event.path.endswith("slow.txt") and event.attempt == 1:
                time.sleep(0.2)
                os.kill(event.pid, signal.SIGKILL)
            if event.solo:
                assert running == {event.path}, "solo retry started beside other work"
        elif isinstance(event, DocumentFinished):
            running.discard(event.path)

    names = ["a.txt", "slow.txt", "c.txt", "d.txt", "e.txt"]
    ledger, events = run(tmp_path, names, workers=2, on_event=kill_slow)
    result = statuses(ledger)
    assert result.pop("slow.txt") == (Status.DONE, 2, None)
    assert all(v == (Status.DONE, 1, None) for v in result.values())
    killed = [e for e in events if isinstance(e, DocumentFinished) and e.requeued]
    assert len(killed) == 1
    outcome = killed[0].outcome
    assert isinstance(outcome, Failure)
    assert outcome.error_class is ErrorClass.KILLED
    assert "SIGKILL" in outcome.message
    solo = [e for e in events if isinstance(e, DocumentStarted) and e.solo]
    assert [Path(e.path).name for e in solo] == ["slow.txt"]


def test_timeout_kills_the_worker_and_fails_the_document(tmp_path: Path) -> None:
    started = time.monotonic()
    ledger, _ = run(tmp_path, ["hang.txt", "b.txt"], timeout=1.0)
    assert time.monotonic() - started < 15
    assert statuses(ledger)["hang.txt"] == (Status.FAILED, 1, "timeout")
    assert statuses(ledger)["b.txt"] == (Status.DONE, 1, None)


def test_memory_above_watermark_holds_new_work(tmp_path: Path) -> None:
    readings = iter([MemoryReading(90, 100, "test")] * 6)

    def probe() -> MemoryReading:
        return next(readings, LOW)

    peak = 0
    running: set[str] = set()

    def track(event: Event) -> None:
        nonlocal peak
        if isinstance(event, DocumentStarted):
            running.add(event.path)
            peak = max(peak, len(running))
        elif isinstance(event, DocumentFinished):
            running.discard(event.path)

    ledger, events = run(tmp_path, ["a.txt", "b.txt", "c.txt"], workers=3, probe=probe,
                         on_event=track)  # fmt: skip
    held = [e for e in events if isinstance(e, MemoryHeld)]
    assert held and held[0].reading.ratio == 0.9
    assert all(s == Status.DONE for s, _, _ in statuses(ledger).values())
    starts = [e for e in events if isinstance(e, (DocumentStarted, DocumentFinished))]
    # while held, "a" ran alone: the second start comes after the first finish
    assert isinstance(starts[1], DocumentFinished)


def test_stopped_run_blames_only_the_worker_that_was_already_killed(tmp_path: Path) -> None:
    """systemd's OOMPolicy=stop: the kernel kills one worker, then SIGTERM reaches the whole
    unit. The victim is recorded as killed (its attempt counts); the others are interrupted
    (theirs is given back) so an OOM costs one document. The signal only sets a flag: the
    runner stops between steps, never halfway through a ledger write."""
    import psutil

    stop = StopSignal()

    def oom_then_stop(event: Event) -> None:
        if isinstance(event, DocumentStarted) and event.path.endswith("victim.txt"):
            os.kill(event.pid, signal.SIGKILL)
            proc = psutil.Process(event.pid)
            while proc.status() != psutil.STATUS_ZOMBIE:
                time.sleep(0.01)
            stop.trigger(signal.SIGTERM)  # what the handler does when systemd stops the unit

    with pytest.raises(Stopped):
        # the largest starts first: "slow-and-large" is running when the victim starts
        run(tmp_path, ["slow-and-large.txt", "victim.txt", "z.txt"], workers=2,
            on_event=oom_then_stop, stop=stop)  # fmt: skip
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    ledger.finish_run("j", "r1", "cancelled", {})  # what run_job does on the way out
    result = statuses(ledger)
    assert result["victim.txt"] == (Status.FAILED, 1, "killed")
    assert result["slow-and-large.txt"] == (Status.FAILED, 0, "interrupted")
    assert result["z.txt"] == (Status.PENDING, 0, None)


def test_a_kill_found_only_while_stopping_is_reported_like_any_other(tmp_path: Path) -> None:
    """Issue 12: the stop reaches the runner before it saw its worker die; the kill it then
    finds among its workers gets its DocumentFinished (the journal's retry/failed entry),
    and the attempts it could not settle get theirs from the ledger (run_job's part)."""
    stop = StopSignal()
    events: list[Event] = []

    def stop_when_started(event: Event) -> None:
        events.append(event)
        started = [e for e in events if isinstance(e, DocumentStarted)]
        if isinstance(event, DocumentStarted) and len(started) == 2:
            armed = tmp_path / "markers" / "oomed-and-large.txt"
            deadline = time.monotonic() + 30
            while not armed.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.trigger(signal.SIGTERM)

    with pytest.raises(Stopped):
        run(tmp_path, ["oomed-and-large.txt", "slow.txt"], workers=2,
            on_event=stop_when_started, stop=stop)  # fmt: skip
    (killed,) = [e for e in events if isinstance(e, DocumentFinished)]
    assert Path(killed.path).name == "oomed-and-large.txt" and killed.requeued
    assert isinstance(killed.outcome, Failure)
    assert killed.outcome.error_class is ErrorClass.KILLED
    summary = next(e for e in events if isinstance(e, RunFinished)).summary
    assert (summary.done, summary.failed) == (0, 0)  # it is retried: not a failure yet
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    (closed,) = ledger.finish_run("j", "r1", "cancelled", {})  # what run_job does next
    assert (Path(closed.path).name, closed.error_class, closed.attempts) == (
        "slow.txt", ErrorClass.INTERRUPTED, 0)  # fmt: skip


def test_workers_not_the_runner_are_the_preferred_oom_victims(tmp_path: Path) -> None:
    runner_score = Path("/proc/self/oom_score_adj").read_text().strip()
    ledger, _ = run(tmp_path, ["score-a.txt", "score-b.txt"])
    assert {s for s, _, _ in statuses(ledger).values()} == {Status.DONE}
    scores = {p.read_text().strip() for p in (tmp_path / "markers").iterdir()}
    assert scores == {"1000"}
    assert Path("/proc/self/oom_score_adj").read_text().strip() == runner_score != "1000"
