"""Rendering the ledger's run history for `lexi-maint runs` (pure).

One line (or JSON object) per run, newest first: when it started and ended, how long it
took, what it did (done / failed / unchanged documents), its exit status, what the model
calls cost, how long the service was down for it, how its job units ended and what started
it (timer, operator, foreground). A daemon run that an OOM kill split over several job units
is one row: its counts, cost and downtime are the whole run's, and the units column says how
many units it took and how many the OOM killer ended ("3 (2 OOM-killed)"). A run refused by
its preflight checks shows "–" counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lexi_maint.report.progress import format_duration
from lexi_maint.report.status import iso_time
from lexi_maint.run.ledger_rows import RunRow

SCHEMA_VERSION = 1  # of `runs --json` and `list --json`
NONE = "–"
COUNTS = ("total", "processed", "done", "failed", "unchanged")


def duration(run: RunRow) -> float | None:
    return None if run.finished_at is None else max(0.0, run.finished_at - run.started_at)


def run_json(run: RunRow) -> dict[str, Any]:
    seconds = duration(run)
    return {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status,
        "started_at": iso_time(run.started_at),
        "finished_at": iso_time(run.finished_at),
        "duration_seconds": None if seconds is None else round(seconds, 3),
        "counts": {key: run.summary[key] for key in COUNTS if key in run.summary} or None,
        "exit_status": run.exit_status,
        "llm": run.usage.to_json(),
        "service_downtime_seconds": run.service_downtime,
        "job_units": job_units(run) or None,
        "trigger": run.trigger or None,
    }


def job_units(run: RunRow) -> list[str]:
    """How each job unit of a daemon run ended (success, oom-kill, exit-code, ...)."""
    units = run.summary.get("job_units")
    return [str(u) for u in units] if isinstance(units, list) else []


def units_cell(run: RunRow) -> str:
    units = job_units(run)
    if not units:
        return NONE
    killed = units.count("oom-kill")
    return f"{len(units)} ({killed} OOM-killed)" if killed else str(len(units))


def runs_json(runs: Sequence[RunRow]) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "runs": [run_json(r) for r in runs]}


HEADER = ("started (UTC)", "run", "status", "took", "done", "failed", "unchanged", "exit",
          "cost", "downtime", "units", "by")  # fmt: skip


def run_cells(run: RunRow) -> tuple[str, ...]:
    started = datetime.fromtimestamp(run.started_at, UTC).strftime("%Y-%m-%d %H:%M")
    seconds = duration(run)
    counts = [str(run.summary.get(key, NONE)) for key in ("done", "failed", "unchanged")]
    cost = NONE if run.usage.empty else f"{run.usage.cost:.4f} {run.usage.currency}".rstrip()
    down = NONE if run.service_downtime is None else format_duration(run.service_downtime)
    return (
        started,
        run.run_id,
        run.status,
        NONE if seconds is None else format_duration(seconds),
        *counts,
        NONE if run.exit_status is None else str(run.exit_status),
        cost,
        down,
        units_cell(run),
        run.trigger or NONE,
    )


def render_runs(runs: Sequence[RunRow]) -> str:
    rows = [HEADER, *(run_cells(r) for r in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    return "\n".join(lines) + "\n"


def no_runs(job: str | None, state_dir: object) -> str:
    return f"no runs yet{f' for {job}' if job else ''} in {state_dir}\n"
