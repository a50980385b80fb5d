"""bench.llm's reading of the test server's timeline."""

from __future__ import annotations

from typing import Any

from bench.llm import ANALYSIS_MODEL, CHUNK_MODEL, Case, central_schedule
from bench.treemem import TreeRun


def case(calls: list[tuple[str, str, float]]) -> Case:
    """Calls as (model, first line of the first user message, latency)."""
    timeline = [(0.0, latency, True, model, 0, label) for model, label, latency in calls]
    stats: dict[str, Any] = {"timeline": timeline, "total_latency": sum(c[2] for c in calls)}
    run = TreeRun(exit_code=0, seconds=1.0, peak_tree_rss=0, peak_process_rss=0, stdout="")
    return Case("x", run, 0.0, stats, 2, 2, 0.0)


def test_the_central_schedule_runs_longest_first_and_chunking_before_analysis() -> None:
    calls = [
        (CHUNK_MODEL, "Document: big. Part 1 of 2.", 1.0),
        (CHUNK_MODEL, "Document: big. Part 2 of 2.", 2.0),
        (ANALYSIS_MODEL, "Document: big. Part 1 of 2.", 5.0),
        (ANALYSIS_MODEL, "Document: big. Part 2 of 2.", 5.0),
        (CHUNK_MODEL, "Document: small. Part 1 of 1.", 1.0),
        (ANALYSIS_MODEL, "Document: small. Part 1 of 1.", 3.0),
    ]
    # 2 slots: the chunking calls end at 2, then big's two 5 s analyses (longest first)
    # take both slots (2-7) and small's 3 s analysis waits for one (7-10)
    assert central_schedule(case(calls), 2) == 10.0
    assert central_schedule(case(calls), 8) == 7.0  # big: 2 s of chunking + 5 s of analysis
    per_chunk = [(ANALYSIS_MODEL, "Document: x", 1.0)] * 4  # no chunking calls: all ready
    assert central_schedule(case(per_chunk), 2) == 2.0
