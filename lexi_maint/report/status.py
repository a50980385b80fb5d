"""Rendering a job's ledger for `lexi-maint status` (pure).

A document whose run ended under it (the ledger stores status `failed`, error class
`interrupted`) is shown as *interrupted*, not failed: it was not the document's fault and
the next run processes it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lexi_maint.errors import ErrorClass
from lexi_maint.llm.usage import Usage
from lexi_maint.printable import printable
from lexi_maint.report.progress import format_cost, format_usage
from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import Status
from lexi_maint.units import plural

SCHEMA_VERSION = 1  # of the JSON that `status JOB --json` prints; raised on breaking changes
INTERRUPTED = "interrupted"
STATES = (*(s.value for s in Status), INTERRUPTED)  # what a document shows as
MARKS = {
    Status.DONE.value: "✅",
    Status.FAILED.value: "❌",
    Status.RUNNING.value: "▶",
    Status.PENDING.value: "○",
    Status.SKIPPED.value: "⤼",
    INTERRUPTED: "⏸",
}


def shown_state(r: DocumentRecord) -> str:
    if r.status is Status.FAILED and r.error_class == ErrorClass.INTERRUPTED.value:
        return INTERRUPTED
    return r.status.value


def is_failure(r: DocumentRecord) -> bool:
    """What `status --failed` lists: documents that failed on their own account."""
    return shown_state(r) == Status.FAILED.value


def iso_time(timestamp: float | None) -> str | None:
    """An epoch timestamp as ISO 8601 in UTC, to the second."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def status_json(
    job: str,
    records: Sequence[DocumentRecord],
    last_run: Mapping[str, Any] | None,
    *,
    failed_only: bool = False,
) -> dict[str, Any]:
    """Counts over every document; `documents` lists the failed ones alone if asked."""
    counts = Counter(shown_state(r) for r in records)
    return {
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "counts": {state: counts.get(state, 0) for state in STATES},
        "llm": _total(records).to_json(),
        "last_run": _run_json(last_run) if last_run else None,
        "documents": [_document_json(r) for r in records if is_failure(r) or not failed_only],
    }


def _document_json(r: DocumentRecord) -> dict[str, Any]:
    data = r.to_json()
    data["state"] = shown_state(r)
    data["started_at"] = iso_time(r.started_at)
    data["finished_at"] = iso_time(r.finished_at)
    return data


def _run_json(run: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(run)
    for key in ("started_at", "finished_at"):
        data[key] = iso_time(run.get(key))
    return data


def no_runs_yet(job: str, state_dir: Path) -> str:
    return f"no runs yet for {job} in {state_dir}\n"


def status_header(job: str, records: Sequence[DocumentRecord]) -> str:
    counts = Counter(shown_state(r) for r in records)
    parts = [f"{MARKS[s]} {counts[s]} {s}" for s in STATES if counts[s] or s != INTERRUPTED]
    return f"job {job}: {plural(len(records), 'document')} · " + " · ".join(parts)


def render_status(
    job: str,
    records: Sequence[DocumentRecord],
    last_run: Mapping[str, Any] | None,
    *,
    failed_only: bool = False,
) -> str:
    lines = [status_header(job, records)]
    total = _total(records)
    if not total.empty:
        lines.append(f"LLM, documents in the ledger: {format_usage(total)}")
    if last_run:
        lines.append(f"last run {last_run['run_id']}: {last_run['status']}")
        run_usage = Usage.from_json(last_run.get("llm"))
        if not run_usage.empty:
            lines.append(f"LLM, last run: {format_usage(run_usage)}")
    lines += [_row(r) for r in records if is_failure(r) or not failed_only]
    return "\n".join(lines) + "\n"


def _row(r: DocumentRecord) -> str:
    state = shown_state(r)
    seconds = sum(r.timings.values())
    detail = f"{r.chunks} chunks {seconds:.1f} s" if r.status is Status.DONE else ""
    if r.error_class:
        detail = f"{r.error_class}: {printable(r.error_message or '')}"
    peak = f" · peak {r.peak_rss // 2**20} MiB" if r.peak_rss else ""
    if peak and r.peak_own is not None:  # what the memory plan counts per worker
        peak += f" (own {r.peak_own // 2**20} MiB)"
    cost = "" if r.usage.empty else f" · {format_cost(r.usage)}"
    return (
        f"  {MARKS[state]} {state:<11} {printable(Path(r.path).name)}"
        f" · attempts {r.attempts} · {detail}{peak}{cost}"
    )


def _total(records: Sequence[DocumentRecord]) -> Usage:
    total = Usage()
    for r in records:
        total = total + r.usage
    return total
