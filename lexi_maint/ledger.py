"""The per-document ledger: the only module that writes it.

SQLite in WAL mode with synchronous=FULL; every change is one short transaction, so a run
killed at any moment (SIGKILL included) leaves a consistent ledger. One row per
(job, document path); one row per run.

Schema versions (PRAGMA user_version), upgraded in place when a ledger is opened:
    1  documents and runs
    2  model usage columns on both (llm_calls, llm_cached_answers, prompt_tokens,
       completion_tokens, reasoning_tokens, cache_hit_tokens, cost, currency). A document's
       usage adds up its attempts since its attempts were last reset; a run's adds up every
       attempt recorded in that run, failed ones included (they were paid for too).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.llm.usage import Usage
from lexi_maint.plan import Action, Decision, Found, Known, Status

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    job TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error_class TEXT,
    error_message TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    timings TEXT NOT NULL DEFAULT '{}',
    peak_rss INTEGER,
    chunks INTEGER,
    run_id TEXT,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job, path)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    pid INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    summary TEXT NOT NULL DEFAULT '{}'
);
"""

# Added by schema version 2 to both tables; the names are Usage's fields.
_USAGE_COLUMNS = (
    ("llm_calls", "calls", "INTEGER NOT NULL DEFAULT 0"),
    ("llm_cached_answers", "cached_answers", "INTEGER NOT NULL DEFAULT 0"),
    ("prompt_tokens", "prompt_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("completion_tokens", "completion_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("reasoning_tokens", "reasoning_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cache_hit_tokens", "cache_hit_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cost", "cost", "REAL NOT NULL DEFAULT 0"),
)
_ADD_USAGE = ", ".join(f"{column} = {column} + ?" for column, _, _ in _USAGE_COLUMNS)
_CURRENCY = "currency = CASE WHEN ? = '' THEN currency ELSE ? END"
_RESET_USAGE = ", ".join(f"{column} = 0" for column, _, _ in _USAGE_COLUMNS)


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
            "chunks": self.chunks,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "llm": self.usage.to_json(),
        }


@dataclass(frozen=True)
class Success:
    chunks: int
    timings: Mapping[str, float]
    peak_rss: int | None
    warnings: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Failure:
    error_class: ErrorClass
    message: str
    retryable: bool
    timings: Mapping[str, float] = field(default_factory=dict)
    peak_rss: int | None = None
    warnings: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_job: bool = False  # every document would fail like this: the runner stops the job


Outcome = Success | Failure


class Ledger:
    """Open with `Ledger.open(path)`; close with `close()` or use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Ledger:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            _migrate(conn)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        return cls(conn, path)

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """Open an existing ledger for reading only: never creates it, never migrates it."""
        if not path.is_file():
            raise LedgerError(f"no ledger at {path}")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            conn.close()
            raise LedgerError(f"ledger {path} has schema version {version}, not {SCHEMA_VERSION}")
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------

    def documents(self, job: str) -> list[DocumentRecord]:
        rows = self._conn.execute(
            "SELECT * FROM documents WHERE job = ? ORDER BY path", (job,)
        ).fetchall()
        return [_record(row) for row in rows]

    def known(self, job: str) -> dict[str, Known]:
        return {
            r.path: Known(r.path, r.sha256, r.status, r.attempts, r.error_class)
            for r in self.documents(job)
        }

    def document(self, job: str, path: str) -> DocumentRecord:
        row = self._conn.execute(
            "SELECT * FROM documents WHERE job = ? AND path = ?", (job, path)
        ).fetchone()
        if row is None:
            raise LedgerError(f"no ledger row for job {job!r}, document {path}")
        return _record(row)

    def last_run(self, job: str) -> dict[str, Any] | None:
        usage_columns = ", ".join(column for column, _, _ in _USAGE_COLUMNS)
        row = self._conn.execute(
            f"SELECT run_id, status, started_at, finished_at, summary, {usage_columns}, currency"
            " FROM runs WHERE job = ? ORDER BY started_at DESC LIMIT 1",
            (job,),
        ).fetchone()
        if row is None:
            return None
        run_id, status, started, finished, summary, *usage = row
        return {
            "run_id": run_id,
            "status": status,
            "started_at": started,
            "finished_at": finished,
            "summary": json.loads(summary),
            "llm": _usage(usage).to_json(),
        }

    # -- writing ---------------------------------------------------------------------------

    def start_run(self, job: str, run_id: str, pid: int) -> list[str]:
        """Record a new run; documents left `running` by a dead run become failed/interrupted.

        Returns the paths that were interrupted.
        """
        now = time.time()
        with self._tx() as db:
            stale = _interrupt(db, job, now)
            db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?"
                " WHERE job = ? AND status = 'running'",
                (now, job),
            )
            db.execute(
                # the same run id again: the daemon resumes a run after an OOM kill
                "INSERT INTO runs (run_id, job, pid, status, started_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET pid = excluded.pid, status = 'running',"
                " finished_at = NULL",
                (run_id, job, pid, "running", now),
            )
        return stale

    def finish_run(
        self, job: str, run_id: str, status: str, summary: Mapping[str, Any]
    ) -> list[str]:
        """Close a run; documents it left running become failed/interrupted (returned)."""
        with self._tx() as db:
            stale = _interrupt(db, job, time.time())
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ? WHERE run_id = ?",
                (status, time.time(), json.dumps(dict(summary)), run_id),
            )
        return stale

    def apply_plan(self, job: str, found: Sequence[Found], decisions: Sequence[Decision]) -> None:
        """Insert new documents, reset changed ones, mark vanished ones skipped."""
        by_path = {f.path: f for f in found}
        now = time.time()
        with self._tx() as db:
            for d in decisions:
                if d.action is Action.VANISHED:
                    db.execute(
                        "UPDATE documents SET status = 'skipped', error_class = ?,"
                        " error_message = 'no longer in the input directory', updated_at = ?"
                        " WHERE job = ? AND path = ?",
                        (ErrorClass.MISSING.value, now, job, d.path),
                    )
                elif d.action is Action.PROCESS:
                    _upsert_pending(db, job, by_path[d.path], d.reset_attempts, now)

    def mark_running(self, job: str, path: str, run_id: str) -> int:
        """Count an attempt and return its number (1 for the first)."""
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status = 'running', attempts = attempts + 1, run_id = ?,"
                " started_at = ?, finished_at = NULL, updated_at = ? WHERE job = ? AND path = ?",
                (run_id, time.time(), time.time(), job, path),
            )
            row = db.execute(
                "SELECT attempts FROM documents WHERE job = ? AND path = ?", (job, path)
            ).fetchone()
        if row is None:
            raise LedgerError(f"document {path} of job {job!r} is not in the ledger")
        return int(row[0])

    def record(self, job: str, path: str, outcome: Outcome) -> None:
        """Store a finished attempt's outcome."""
        now = time.time()
        if isinstance(outcome, Success):
            values: tuple[Any, ...] = ("done", None, None, outcome.chunks)
        else:
            values = ("failed", outcome.error_class.value, outcome.message, None)
        usage = _usage_values(outcome.usage)
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status = ?, error_class = ?, error_message = ?, chunks = ?,"
                " warnings = ?, timings = ?, peak_rss = ?, finished_at = ?, updated_at = ?,"
                f" {_ADD_USAGE}, {_CURRENCY} WHERE job = ? AND path = ?",
                (
                    *values,
                    json.dumps(list(outcome.warnings)),
                    json.dumps(dict(outcome.timings)),
                    outcome.peak_rss,
                    now,
                    now,
                    *usage,
                    job,
                    path,
                ),
            )
            if not outcome.usage.empty:
                db.execute(
                    f"UPDATE runs SET {_ADD_USAGE}, {_CURRENCY} WHERE run_id ="
                    " (SELECT run_id FROM documents WHERE job = ? AND path = ?)",
                    (*usage, job, path),
                )

    def release(self, job: str, path: str, *, keep_error: bool = False) -> None:
        """Put a document back to pending without counting the attempt (the job stopped)."""
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status = 'pending', attempts = max(attempts - 1, 0),"
                " error_class = CASE WHEN ? THEN error_class END,"
                " error_message = CASE WHEN ? THEN error_message END,"
                " started_at = NULL, updated_at = ? WHERE job = ? AND path = ?",
                (keep_error, keep_error, time.time(), job, path),
            )


def _interrupt(db: sqlite3.Connection, job: str, now: float) -> list[str]:
    stale = [
        r[0]
        for r in db.execute(
            "SELECT path FROM documents WHERE job = ? AND status = 'running'", (job,)
        )
    ]
    # An interrupted attempt was not the document's fault: it gets the attempt back. Except
    # when its worker was killed before and this was the retry: under OOMPolicy=stop the
    # retry is stopped together with the unit its own OOM kill ended, so it stays the suspect.
    db.execute(
        "UPDATE documents SET status = 'failed', updated_at = ?,"
        " error_message = CASE WHEN error_class = ? THEN error_message ||"
        "   ' (retried; that run was stopped too)'"
        "   ELSE 'the run processing it ended before it finished (' || coalesce(run_id, '?')"
        "   || ')' END,"
        " attempts = CASE WHEN error_class = ? THEN attempts ELSE max(attempts - 1, 0) END,"
        " error_class = CASE WHEN error_class = ? THEN error_class ELSE ? END"
        " WHERE job = ? AND status = 'running'",
        (now, *(ErrorClass.KILLED.value,) * 3, ErrorClass.INTERRUPTED.value, job),
    )
    return stale


def _upsert_pending(db: sqlite3.Connection, job: str, f: Found, reset: bool, now: float) -> None:
    db.execute(
        "INSERT INTO documents (job, path, sha256, size, status, attempts, updated_at)"
        " VALUES (?, ?, ?, ?, 'pending', 0, ?)"
        " ON CONFLICT (job, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size,"
        " status = CASE WHEN ? THEN 'pending' ELSE documents.status END,"
        " attempts = CASE WHEN ? THEN 0 ELSE documents.attempts END,"
        " error_class = CASE WHEN ? THEN NULL ELSE documents.error_class END,"
        " error_message = CASE WHEN ? THEN NULL ELSE documents.error_message END,"
        " updated_at = excluded.updated_at",
        (job, f.path, f.sha256, f.size, now, reset, reset, reset, reset),
    )
    if reset:
        db.execute(
            f"UPDATE documents SET {_RESET_USAGE}, currency = '' WHERE job = ? AND path = ?",
            (job, f.path),
        )


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger schema version {version} is newer than this lexi-maint ({SCHEMA_VERSION});"
            " upgrade lexi-maint instead of downgrading the state directory"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")  # one upgrade at a time; read the version again inside
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < 1:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < 2:
            for table in ("documents", "runs"):
                for column, _, declaration in _USAGE_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                conn.execute(f"ALTER TABLE {table} ADD COLUMN currency TEXT NOT NULL DEFAULT ''")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _usage_values(usage: Usage) -> tuple[Any, ...]:
    return (*(getattr(usage, name) for _, name, _ in _USAGE_COLUMNS), usage.currency,
            usage.currency)  # fmt: skip


def _usage(values: Sequence[Any]) -> Usage:
    """Usage from the usage columns followed by currency, as selected from a row."""
    *counts, currency = values
    fields = {name: value for (_, name, _), value in zip(_USAGE_COLUMNS, counts, strict=True)}
    return Usage(**fields, currency=currency)


def _record(row: tuple[Any, ...]) -> DocumentRecord:
    (job, path, sha, size, status, attempts, ecls, emsg, warn, timings, rss, chunks, run_id,
     started, finished, _updated, *usage) = row  # fmt: skip
    return DocumentRecord(
        job=job,
        path=path,
        sha256=sha,
        size=size,
        status=Status(status),
        attempts=attempts,
        error_class=ecls,
        error_message=emsg,
        warnings=tuple(json.loads(warn)),
        timings=json.loads(timings),
        peak_rss=rss,
        chunks=chunks,
        run_id=run_id,
        started_at=started,
        finished_at=finished,
        usage=_usage(usage),
    )
