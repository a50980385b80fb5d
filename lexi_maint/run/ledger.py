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
    3  reused_cost on both (what answers reused from the response cache cost when bought)
       and documents.spend_mark. Usage is no longer taken from a worker's result: it is
       folded in from the spend journal (`lexi_maint.llm.cache`), where every answered call
       is written the moment it arrives. When an attempt ends (a result, a failure, a kill
       by the OOM killer or document_timeout, a job stop) and when a run finds an attempt
       of a dead run interrupted, the journal's rows for that document after its
       spend_mark are added to the document and to the run that made the attempt, and the
       mark moves on, in one transaction. So totals equal what the provider billed, a
       killed attempt's calls included.
    4  run history columns on runs: exit_status, trigger (timer, operator, foreground) and
       service_downtime (seconds the service was stopped for the run; daemon runs only).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Outcome, Success, bounded, bounded_warnings
from lexi_maint.run.plan import Action, Decision, Found, Known, Status

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4

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
# Added by schema version 3 to both tables.
_V3_USAGE_COLUMNS = (("reused_cost", "reused_cost", "REAL NOT NULL DEFAULT 0"),)
_ALL_USAGE_COLUMNS = _USAGE_COLUMNS + _V3_USAGE_COLUMNS
_ADD_USAGE = ", ".join(f"{column} = {column} + ?" for column, _, _ in _ALL_USAGE_COLUMNS)
_CURRENCY = "currency = CASE WHEN ? = '' THEN currency ELSE ? END"
_HISTORY_COLUMNS = (
    ("exit_status", "INTEGER"),
    ("trigger", "TEXT NOT NULL DEFAULT ''"),
    ("service_downtime", "REAL"),
)
_RESET_USAGE = ", ".join(f"{column} = 0" for column, _, _ in _ALL_USAGE_COLUMNS)
_USAGE_SELECT = ", ".join(column for column, _, _ in _ALL_USAGE_COLUMNS) + ", currency"
_DOCUMENT_SELECT = (
    "job, path, sha256, size, status, attempts, error_class, error_message, warnings, timings,"
    f" peak_rss, chunks, run_id, started_at, finished_at, {_USAGE_SELECT}"
)
_JOURNAL_SUMS = ", ".join(f"sum({name})" for _, name, _ in _ALL_USAGE_COLUMNS)


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


class Ledger:
    """Open with `Ledger.open(path)`; close with `close()` or use as a context manager."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, spend_journal: Path | None = None
    ) -> None:
        self._conn = conn
        self.path = path
        self._journal_path = spend_journal
        self._journal: sqlite3.Connection | None = None

    @classmethod
    def open(cls, path: Path, spend_journal: Path | None = None) -> Ledger:
        """`spend_journal`: the LLM response cache whose spend rows this ledger folds in
        (None: documents and runs keep no model usage)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else '?'}")
            _migrate(conn)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            conn.close()
            if _damaged(exc):
                raise LedgerError(damaged_message(path, exc)) from exc
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        return cls(conn, path, spend_journal)

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
        if self._journal is not None:
            self._journal.close()

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
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if _damaged(exc):
                raise LedgerError(damaged_message(self.path, exc)) from exc
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads that meet a damaged page or a garbled value end in one LedgerError."""
        try:
            yield
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if _damaged(exc):
                raise LedgerError(damaged_message(self.path, exc)) from exc
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    def documents(self, job: str) -> list[DocumentRecord]:
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {_DOCUMENT_SELECT} FROM documents WHERE job = ? ORDER BY path", (job,)
            ).fetchall()
        return [_record(row, self.path) for row in rows]

    def known(self, job: str) -> dict[str, Known]:
        return {
            r.path: Known(r.path, r.sha256, r.status, r.attempts, r.error_class)
            for r in self.documents(job)
        }

    def document(self, job: str, path: str) -> DocumentRecord:
        with self._reading():
            row = self._conn.execute(
                f"SELECT {_DOCUMENT_SELECT} FROM documents WHERE job = ? AND path = ?",
                (job, path),
            ).fetchone()
        if row is None:
            raise LedgerError(f"no ledger row for job {job!r}, document {path}")
        return _record(row, self.path)

    def runs(self, job: str | None = None, limit: int = 20) -> list[RunRow]:
        """The newest `limit` runs, of `job` or of every job, newest first."""
        where, params = ("WHERE job = ?", [job]) if job else ("", [])
        rows = self._conn.execute(
            "SELECT run_id, job, status, started_at, finished_at, exit_status, trigger,"
            f" service_downtime, summary, {_USAGE_SELECT} FROM runs {where}"
            " ORDER BY started_at DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_run_row(row) for row in rows]

    def last_success(self, job: str) -> float | None:
        """When the job's last run with exit status 0 ended."""
        row = self._conn.execute(
            "SELECT max(finished_at) FROM runs WHERE job = ? AND exit_status = 0", (job,)
        ).fetchone()
        return None if row is None else row[0]

    def last_run(self, job: str) -> dict[str, Any] | None:
        with self._reading():
            row = self._conn.execute(
                f"SELECT run_id, status, started_at, finished_at, summary, {_USAGE_SELECT}"
                " FROM runs WHERE job = ? ORDER BY started_at DESC LIMIT 1",
                (job,),
            ).fetchone()
        if row is None:
            return None
        run_id, status, started, finished, summary, *usage = row
        try:
            return {
                "run_id": str(run_id),
                "status": str(status),
                "started_at": _number(started),
                "finished_at": _number(finished),
                "summary": _json(summary, dict),
                "llm": _usage(usage).to_json(),
            }
        except (ValueError, TypeError) as exc:
            raise LedgerError(damaged_message(self.path, exc)) from exc

    def run_usage(self, run_id: str) -> Usage:
        """What the model calls of one run's attempts used, as folded in so far."""
        row = self._conn.execute(
            f"SELECT {_USAGE_SELECT} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return Usage() if row is None else _usage(row)

    # -- writing ---------------------------------------------------------------------------

    def start_run(self, job: str, run_id: str, pid: int, trigger: str = "") -> list[str]:
        """Record a new run; documents left `running` by a dead run become failed/interrupted.

        Returns the paths that were interrupted. `trigger`: what started it (see RunRow).
        """
        now = time.time()
        with self._tx() as db:
            stale = _interrupt(db, job, now)
            for path in stale:  # what their killed workers were billed for
                self._settle(db, job, path)
            db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?"
                " WHERE job = ? AND status = 'running'",
                (now, job),
            )
            db.execute(
                # the same run id again: the daemon resumes a run after an OOM kill
                "INSERT INTO runs (run_id, job, pid, status, started_at, trigger)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET pid = excluded.pid, status = 'running',"
                " finished_at = NULL",
                (run_id, job, pid, "running", now, trigger),
            )
        return stale

    def finish_run(
        self,
        job: str,
        run_id: str,
        status: str,
        summary: Mapping[str, Any],
        exit_status: int | None = None,
    ) -> list[str]:
        """Close a run; documents it left running become failed/interrupted (returned)."""
        with self._tx() as db:
            stale = _interrupt(db, job, time.time())
            for path in stale:
                self._settle(db, job, path)
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ?,"
                " exit_status = coalesce(?, exit_status) WHERE run_id = ?",
                (status, time.time(), json.dumps(dict(summary)), exit_status, run_id),
            )
        return stale

    def record_daemon_run(
        self,
        job: str,
        run_id: str,
        *,
        status: str,
        started_at: float,
        exit_status: int,
        trigger: str,
        service_downtime: float | None,
    ) -> None:
        """What the daemon knows of a run once it is over: its exit status, what started it
        and how long the service was down. A run that never reached its job unit (preflight
        failed) gets its row here; a run the pipeline recorded keeps its own status."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, job, pid, status, started_at, finished_at,"
                " exit_status, trigger, service_downtime) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET exit_status = excluded.exit_status,"
                " trigger = excluded.trigger, service_downtime = excluded.service_downtime,"
                " finished_at = coalesce(finished_at, excluded.finished_at)",
                (run_id, job, status, started_at, time.time(), exit_status, trigger,
                 service_downtime),
            )  # fmt: skip

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
        """Store a finished attempt's outcome (messages and warnings cut to bounded sizes)
        and fold in its spend from the journal (the outcome's own `usage` is the worker's
        view, for display only)."""
        now = time.time()
        if isinstance(outcome, Success):
            values: tuple[Any, ...] = ("done", None, None, outcome.chunks)
        else:
            values = ("failed", outcome.error_class.value, bounded(outcome.message), None)
        with self._tx() as db:
            db.execute(
                "UPDATE documents SET status = ?, error_class = ?, error_message = ?, chunks = ?,"
                " warnings = ?, timings = ?, peak_rss = ?, finished_at = ?, updated_at = ?"
                " WHERE job = ? AND path = ?",
                (
                    *values,
                    json.dumps(bounded_warnings(outcome.warnings)),
                    json.dumps(dict(outcome.timings)),
                    outcome.peak_rss,
                    now,
                    now,
                    job,
                    path,
                ),
            )
            self._settle(db, job, path)

    def settle(self, job: str, path: str) -> None:
        """Fold a document's journalled spend into the ledger (see the module docstring)."""
        with self._tx() as db:
            self._settle(db, job, path)

    def _settle(self, db: sqlite3.Connection, job: str, path: str) -> None:
        row = db.execute(
            "SELECT spend_mark, run_id FROM documents WHERE job = ? AND path = ?", (job, path)
        ).fetchone()
        journal = self._open_journal()
        if row is None or journal is None:
            return
        mark, run_id = row
        try:
            found = journal.execute(
                f"SELECT max(id), {_JOURNAL_SUMS}, coalesce(max(currency), '') FROM spend"
                " WHERE job = ? AND document = ? AND id > ?",
                (job, path, mark),
            ).fetchone()
        except sqlite3.Error as exc:  # folded later: the rows stay after the mark
            log.warning("spend journal %s unreadable: %s", self._journal_path, exc)
            return
        last, *sums = found
        if last is None:
            return
        values = _usage_values(_usage(sums))
        db.execute(
            f"UPDATE documents SET {_ADD_USAGE}, {_CURRENCY}, spend_mark = ?"
            " WHERE job = ? AND path = ?",
            (*values, last, job, path),
        )
        db.execute(f"UPDATE runs SET {_ADD_USAGE}, {_CURRENCY} WHERE run_id = ?",
                   (*values, run_id))  # fmt: skip

    def _open_journal(self) -> sqlite3.Connection | None:
        """The journal, once it exists (workers create it with their first answer)."""
        if self._journal is not None or self._journal_path is None:
            return self._journal
        if not self._journal_path.exists():
            return None
        try:
            conn = sqlite3.connect(self._journal_path, timeout=30.0, isolation_level=None)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'spend'").fetchone():
                self._journal = conn
            else:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("spend journal %s unreadable: %s", self._journal_path, exc)
        return self._journal

    def requeue(self, job: str, paths: Sequence[str], reason: str) -> None:
        """Documents done whose graph data is gone: pending again, attempts from zero."""
        now = time.time()
        with self._tx() as db:
            db.executemany(
                "UPDATE documents SET status = 'pending', attempts = 0, error_class = ?,"
                " error_message = ?, updated_at = ? WHERE job = ? AND path = ? AND status = 'done'",
                [(ErrorClass.GRAPH_MISSING.value, reason, now, job, path) for path in paths],
            )

    def release(self, job: str, path: str, *, keep_error: bool = False) -> None:
        """Put a document back to pending without counting the attempt (the job stopped)."""
        with self._tx() as db:
            self._settle(db, job, path)
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
        if version < 3:
            for table in ("documents", "runs"):
                for column, _, declaration in _V3_USAGE_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            conn.execute("ALTER TABLE documents ADD COLUMN spend_mark INTEGER NOT NULL DEFAULT 0")
        if version < 4:
            for column, declaration in _HISTORY_COLUMNS:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {declaration}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _run_row(row: Sequence[Any]) -> RunRow:
    run_id, job, status, started, finished, exit_status, trigger, downtime, summary = row[:9]
    return RunRow(
        run_id=run_id, job=job, status=status, started_at=started, finished_at=finished,
        exit_status=exit_status, trigger=trigger, service_downtime=downtime,
        summary=json.loads(summary), usage=_usage(row[9:]),
    )  # fmt: skip


def _usage_values(usage: Usage) -> tuple[Any, ...]:
    return (*(getattr(usage, name) for _, name, _ in _ALL_USAGE_COLUMNS), usage.currency,
            usage.currency)  # fmt: skip


def _usage(values: Sequence[Any]) -> Usage:
    """Usage from the usage columns followed by currency, as selected from a row."""
    *counts, currency = values
    fields = {name: value for (_, name, _), value in zip(_ALL_USAGE_COLUMNS, counts, strict=True)}
    return Usage(**fields, currency=currency)


_REASON_MAX = 300


def damaged_message(path: Path, exc: object) -> str:
    """One line: what is wrong with the ledger and the command that starts a new one."""
    aside = path.parent / "ledger.damaged"
    reason = " ".join(str(exc).split())[:_REASON_MAX]  # SQLite's integrity report has lines
    return (
        f"ledger {path} is damaged ({reason}); to start a new one, move it aside:"
        f" mkdir {aside} && mv {path} {path}-wal {path}-shm {aside}/"
        " (the next run processes every document again; the graph is replaced document by"
        " document, nothing is duplicated)"
    )


def _damaged(exc: sqlite3.Error | UnicodeDecodeError) -> bool:
    """Whether an error speaks of damaged content rather than access, locks or space."""
    if isinstance(exc, UnicodeDecodeError):  # a garbled name in the schema or a PRAGMA's text
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed", ...
    text = str(exc).lower()
    return any(word in text for word in ("decode", "malformed", "corrupt", "no such", "integrity"))


def _record(row: tuple[Any, ...], ledger: Path) -> DocumentRecord:
    """A documents row as a record; a value of the wrong shape is a damaged ledger."""
    (job, path, sha, size, status, attempts, ecls, emsg, warn, timings, rss, chunks, run_id,
     started, finished, *usage) = row  # fmt: skip
    try:
        return DocumentRecord(
            job=str(job),
            path=str(path),
            sha256=str(sha),
            size=int(size),
            status=Status(status),
            attempts=int(attempts),
            error_class=None if ecls is None else str(ecls),
            error_message=None if emsg is None else str(emsg),
            warnings=tuple(str(w) for w in _json(warn, list)),
            timings={str(k): float(v) for k, v in _json(timings, dict).items()},
            peak_rss=None if rss is None else int(rss),
            chunks=None if chunks is None else int(chunks),
            run_id=None if run_id is None else str(run_id),
            started_at=_number(started),
            finished_at=_number(finished),
            usage=_usage(usage),
        )
    except (ValueError, TypeError, OverflowError) as exc:  # int(inf); JSONDecodeError: ValueError
        raise LedgerError(damaged_message(ledger, f"document {path!r}: {exc}")) from exc


def _json(text: object, kind: type[Any]) -> Any:
    value = json.loads(text) if isinstance(text, str | bytes) else None
    if not isinstance(value, kind):
        raise TypeError(f"{text!r:.60} is not a JSON {kind.__name__}")
    return value


def _number(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise TypeError(f"{value!r:.60} is not a finite number")
