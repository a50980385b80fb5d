"""The daemon hears a run's progress one way: the run's event file (issue 11, point 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lexi_maint.daemon.main import Hub
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.pipeline.contract import Success
from lexi_maint.report.reporters import EventFile
from lexi_maint.run.events import DocumentFinished, RunStarted
from lexi_maint.state import StatePaths


def test_lines_and_status_reach_subscribers_from_the_event_file_alone(tmp_path: Path) -> None:
    runs = RunQueue()
    seen: list[dict[str, Any]] = []
    record, _ = runs.submit("j", reprocess=False, subscriber=seen.append)
    hub = Hub(runs, tmp_path)
    events = EventFile(StatePaths(tmp_path).events(record.run_id), "j")
    events(RunStarted("j", record.run_id, 2, 2, 0, 0, 0, 0))
    hub.progress(record.run_id)
    run = runs.get(record.run_id)
    assert run is not None and run.status_text == "j: 0/2 · starting"
    done = DocumentFinished("/in/a.txt", Success(3, {}, None), 1, 0.5, False, 1, 0, 1, 2, None)
    events(done)
    events.close()
    hub.progress(record.run_id)
    hub.progress(record.run_id)  # nothing new: nothing published twice
    published = [(e["event"], e.get("status", e.get("line", ""))) for e in seen]
    kinds = [kind for kind, _ in published]
    assert kinds == ["line", "status", "line", "status"], published
    assert published[1] == ("status", "j: 0/2 · starting")
    assert published[3][1].startswith("j: 1/2 ✅1 ❌0"), published
    assert "a.txt" in published[2][1]
