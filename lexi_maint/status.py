"""Rendering a job's ledger for `lexi-maint status` (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lexi_maint.ledger import DocumentRecord
from lexi_maint.llm.usage import Usage
from lexi_maint.plan import Status
from lexi_maint.printable import printable
from lexi_maint.progress import format_cost, format_usage

MARKS = {
    Status.DONE: "✅",
    Status.FAILED: "❌",
    Status.RUNNING: "▶",
    Status.PENDING: "·",
    Status.SKIPPED: "⤼",
}


def status_json(
    job: str, records: Sequence[DocumentRecord], last_run: Mapping[str, Any] | None
) -> dict[str, Any]:
    counts = Counter(r.status.value for r in records)
    return {
        "job": job,
        "counts": {s.value: counts.get(s.value, 0) for s in Status},
        "llm": _total(records).to_json(),
        "last_run": dict(last_run) if last_run else None,
        "documents": [r.to_json() for r in records],
    }


def render_status(
    job: str, records: Sequence[DocumentRecord], last_run: Mapping[str, Any] | None
) -> str:
    counts = Counter(r.status for r in records)
    head = " · ".join(f"{MARKS[s]} {counts.get(s, 0)} {s.value}" for s in Status)
    lines = [f"job {job}: {len(records)} documents · {head}"]
    total = _total(records)
    if not total.empty:
        lines.append(f"LLM, documents in the ledger: {format_usage(total)}")
    if last_run:
        lines.append(f"last run {last_run['run_id']}: {last_run['status']}")
        run_usage = Usage.from_json(last_run.get("llm"))
        if not run_usage.empty:
            lines.append(f"LLM, last run: {format_usage(run_usage)}")
    for r in records:
        lines.append(_row(r))
    return "\n".join(lines) + "\n"


def _row(r: DocumentRecord) -> str:
    seconds = sum(r.timings.values())
    detail = f"{r.chunks} chunks {seconds:.1f} s" if r.status is Status.DONE else ""
    if r.error_class:
        detail = f"{r.error_class}: {printable(r.error_message or '')}"
    peak = f" · peak {r.peak_rss // 2**20} MiB" if r.peak_rss else ""
    cost = "" if r.usage.empty else f" · {format_cost(r.usage)}"
    return (
        f"  {MARKS[r.status]} {r.status.value:<8} {printable(Path(r.path).name)}"
        f" · attempts {r.attempts} · {detail}{peak}{cost}"
    )


def _total(records: Sequence[DocumentRecord]) -> Usage:
    total = Usage()
    for r in records:
        total = total + r.usage
    return total
