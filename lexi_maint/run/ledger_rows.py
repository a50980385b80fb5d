"""The ledger's rows as records: documents, runs and closed attempts, read by column name;
a value of the wrong shape is a damaged ledger (`LedgerError`)."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.llm.usage import Usage
from lexi_maint.run.ledger_schema import ALL_USAGE_COLUMNS, damaged_message
from lexi_maint.run.plan import Status


@dataclass(frozen=True)
class DocumentRecord:
    job: str
    path: str
    sha256: str
    size: int
    status: Status
    attempts: int
    error_class: str | None
    error_message: str | None
    warnings: tuple[str, ...]
    timings: Mapping[str, float]
    peak_rss: int | None
    chunks: int | None
    run_id: str | None
    started_at: float | None
    finished_at: float | None
    usage: Usage = field(default_factory=Usage)
    peak_own: int | None = None  # peak_rss less the pages shared with the runner

    def to_json(self) -> dict[str, Any]:
        error = None
        if self.error_class:
            error = {"class": self.error_class, "message": self.error_message}
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "status": self.status.value,
            "attempts": self.attempts,
            "error": error,
            "warnings": list(self.warnings),
            "timings": dict(self.timings),
            "peak_rss": self.peak_rss,
            "peak_own": self.peak_own,
            "chunks": self.chunks,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "llm": self.usage.to_json(),
        }


Alive = Callable[[int, float], bool]  # is the process (pid) that started at ... still there?


@dataclass(frozen=True)
class RunRow:
    """One run as the ledger's runs table keeps it (`lexi-maint runs`)."""

    run_id: str
    job: str
    status: str  # running, finished, stopped, cancelled, interrupted, failed
    started_at: float
    finished_at: float | None
    exit_status: int | None
    trigger: str  # timer, operator, foreground; "" for runs recorded before version 3
    service_downtime: float | None  # seconds; None: foreground run, or not restored
    summary: Mapping[str, Any]
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class ClosedAttempt:
    """An attempt whose runner did not record its end (the job unit or the run died first),
    as the ledger closed it when the next job unit or run, or the daemon, found it."""

    job: str
    path: str
    run_id: str  # the run that made the attempt
    attempt: int  # its number (1 for the first)
    attempts: int  # what counts against the document now: the attempt kept or given back
    error_class: ErrorClass  # killed (the attempt counts) or interrupted (given back)
    message: str


def run_row(row: sqlite3.Row, alive: Alive | None) -> RunRow:
    started = row["started_at"]
    return RunRow(
        run_id=row["run_id"], job=row["job"],
        status=shown_status(row["status"], row["pid"], started, alive),
        started_at=started, finished_at=row["finished_at"], exit_status=row["exit_status"],
        trigger=row["trigger"], service_downtime=row["service_downtime"],
        summary=json.loads(row["summary"]), usage=usage_of(row),
    )  # fmt: skip


def shown_status(status: str, pid: object, started_at: object, alive: Alive | None) -> str:
    """`interrupted` for a run still recorded `running` whose process is gone (see `runs`)."""
    if status != "running" or alive is None:
        return status
    if isinstance(pid, int) and isinstance(started_at, int | float) and alive(pid, started_at):
        return status
    return "interrupted"


def usage_values(usage: Usage) -> tuple[Any, ...]:
    return (*(getattr(usage, name) for _, name, _ in ALL_USAGE_COLUMNS), usage.currency,
            usage.currency)  # fmt: skip


def usage_of(row: sqlite3.Row) -> Usage:
    """Usage from a row holding the usage columns and currency, by their names."""
    fields = {name: row[column] for column, name, _ in ALL_USAGE_COLUMNS}
    return Usage(**fields, currency=row["currency"])


def record_of(row: sqlite3.Row, ledger: Path) -> DocumentRecord:
    """A documents row as a record; a value of the wrong shape is a damaged ledger."""
    path, ecls, emsg = row["path"], row["error_class"], row["error_message"]
    rss, own, chunks, run_id = row["peak_rss"], row["peak_own"], row["chunks"], row["run_id"]
    try:
        return DocumentRecord(
            job=str(row["job"]),
            path=str(path),
            sha256=str(row["sha256"]),
            size=int(row["size"]),
            status=Status(row["status"]),
            attempts=int(row["attempts"]),
            error_class=None if ecls is None else str(ecls),
            error_message=None if emsg is None else str(emsg),
            warnings=tuple(str(w) for w in json_value(row["warnings"], list)),
            timings={str(k): float(v) for k, v in json_value(row["timings"], dict).items()},
            peak_rss=None if rss is None else int(rss),
            chunks=None if chunks is None else int(chunks),
            run_id=None if run_id is None else str(run_id),
            started_at=finite_number(row["started_at"]),
            finished_at=finite_number(row["finished_at"]),
            usage=usage_of(row),
            peak_own=None if own is None else int(own),
        )
    except (ValueError, TypeError, OverflowError) as exc:  # int(inf); JSONDecodeError: ValueError
        raise LedgerError(damaged_message(ledger, f"document {path!r}: {exc}")) from exc


def json_value(text: object, kind: type[Any]) -> Any:
    value = json.loads(text) if isinstance(text, str | bytes) else None
    if not isinstance(value, kind):
        raise TypeError(f"{text!r:.60} is not a JSON {kind.__name__}")
    return value


def finite_number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise TypeError(f"{value!r:.60} is not a finite number")
