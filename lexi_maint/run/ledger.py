"""The per-document ledger: the only module that writes its rows.

SQLite in WAL mode with synchronous=FULL; every change is one short transaction, so a run
killed at any moment (SIGKILL included) leaves a consistent ledger. One row per
(job, document path); one row per run.

The schema and its upgrades in place are `lexi_maint.run.ledger_schema` (run by `Ledger.open`);
the rows as records, `lexi_maint.run.ledger_rows`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Outcome, Success, bounded, bounded_warnings
from lexi_maint.run.ledger_rows import (
    Alive,
    ClosedAttempt,
    DocumentRecord,
    RunRow,
    finite_number,
    json_value,
    record_of,
    run_row,
    shown_status,
    usage_of,
    usage_values,
)
from lexi_maint.run.ledger_schema import (
    ADD_USAGE,
    CURRENCY,
    DOCUMENT_SELECT,
    JOURNAL_SUMS,
    READABLE_VERSIONS,
    RESET_USAGE,
    SCHEMA_VERSION,
    USAGE_SELECT,
    V4_DOCUMENT_SELECT,
    damaged,
    damaged_message,
    migrate,
)
from lexi_maint.run.plan import Action, Decision, Found, Known

log = logging.getLogger(__name__)


class Ledger:
    """Open with `Ledger.open(path)`; close with `close()` or use as a context manager."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        spend_journal: Path | None = None,
        select: str = DOCUMENT_SELECT,  # an older schema read-only: see open_readonly
    ) -> None:
        self._conn = conn
        self.path = path
        self._journal_path = spend_journal
        self._journal: sqlite3.Connection | None = None
        self._select = select

    @classmethod
    def open(cls, path: Path, spend_journal: Path | None = None) -> Ledger:
        """`spend_journal`: the LLM response cache whose spend rows this ledger folds in
        (None: documents and runs keep no model usage)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        conn.row_factory = sqlite3.Row  # rows are read by column name, never by position
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else '?'}")
            migrate(conn)
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            conn.close()
            if damaged(exc):
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
            conn.row_factory = sqlite3.Row
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read ledger {path}: {exc}") from exc
        if version not in READABLE_VERSIONS:
            conn.close()
            raise LedgerError(f"ledger {path} has schema version {version}, not {SCHEMA_VERSION}")
        return cls(conn, path, select=DOCUMENT_SELECT if version >= 5 else V4_DOCUMENT_SELECT)

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
            if damaged(exc):
                raise LedgerError(damaged_message(self.path, exc)) from exc
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    # -- reading ---------------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads that meet a damaged page or a garbled value end in one LedgerError."""
        try:
            yield
        except (sqlite3.Error, UnicodeDecodeError) as exc:
            if damaged(exc):
                raise LedgerError(damaged_message(self.path, exc)) from exc
            raise LedgerError(f"ledger {self.path}: {exc}") from exc

    def documents(self, job: str) -> list[DocumentRecord]:
        with self._reading():
            rows = self._conn.execute(
                f"SELECT {self._select} FROM documents WHERE job = ? ORDER BY path", (job,)
            ).fetchall()
        return [record_of(row, self.path) for row in rows]

    def known(self, job: str) -> dict[str, Known]:
        return {
            r.path: Known(r.path, r.sha256, r.status, r.attempts, r.error_class)
            for r in self.documents(job)
        }

    def document(self, job: str, path: str) -> DocumentRecord:
        with self._reading():
            row = self._conn.execute(
                f"SELECT {self._select} FROM documents WHERE job = ? AND path = ?",
                (job, path),
            ).fetchone()
        if row is None:
            raise LedgerError(f"no ledger row for job {job!r}, document {path}")
        return record_of(row, self.path)

    def runs(
        self, job: str | None = None, limit: int = 20, alive: Alive | None = None
    ) -> list[RunRow]:
        """The newest `limit` runs, of `job` or of every job, newest first.

        With `alive` (`lexi_maint.procfs.running_since`), a row still `running` whose
        process is gone reads `interrupted`: it died without recording its end.
        """
        where, params = ("WHERE job = ?", [job]) if job else ("", [])
        rows = self._conn.execute(
            "SELECT run_id, job, status, started_at, finished_at, exit_status, trigger,"
            f" service_downtime, summary, pid, {USAGE_SELECT} FROM runs {where}"
            " ORDER BY started_at DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [run_row(row, alive) for row in rows]

    def last_success(self, job: str) -> float | None:
        """When the job's last run with exit status 0 ended."""
        row = self._conn.execute(
            "SELECT max(finished_at) FROM runs WHERE job = ? AND exit_status = 0", (job,)
        ).fetchone()
        return None if row is None else row[0]

    def last_run(self, job: str, alive: Alive | None = None) -> dict[str, Any] | None:
        """The job's newest run (`alive`: as in `runs`)."""
        with self._reading():
            row = self._conn.execute(
                f"SELECT run_id, status, started_at, finished_at, summary, pid, {USAGE_SELECT}"
                " FROM runs WHERE job = ? ORDER BY started_at DESC LIMIT 1",
                (job,),
            ).fetchone()
        if row is None:
            return None
        try:
            return {
                "run_id": str(row["run_id"]),
                "status": shown_status(str(row["status"]), row["pid"], row["started_at"], alive),
                "started_at": finite_number(row["started_at"]),
                "finished_at": finite_number(row["finished_at"]),
                "summary": json_value(row["summary"], dict),
                "llm": usage_of(row).to_json(),
            }
        except (ValueError, TypeError) as exc:
            raise LedgerError(damaged_message(self.path, exc)) from exc

    def run_usage(self, run_id: str) -> Usage:
        """What the model calls of one run's attempts used, as folded in so far."""
        row = self._conn.execute(
            f"SELECT {USAGE_SELECT} FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        return Usage() if row is None else usage_of(row)

    # -- writing ---------------------------------------------------------------------------

    def start_run(self, job: str, run_id: str, pid: int, trigger: str = "") -> list[ClosedAttempt]:
        """Record a new run; documents left `running` by a dead run become failed/interrupted.

        Returns those closed attempts (the caller journals them). `trigger`: what started it
        (see RunRow). The same run id again is the daemon's next job unit of the run after
        an OOM kill: the row counts its units ("units" in the summary).
        """
        now = time.time()
        with self._tx() as db:
            closed = _interrupt(db, job, now)
            for attempt in closed:  # what their killed workers were billed for
                self._settle(db, job, attempt.path)
            db.execute(
                "UPDATE runs SET status = 'interrupted', finished_at = ?"
                " WHERE job = ? AND status = 'running'",
                (now, job),
            )
            row = db.execute("SELECT summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            units = 1 if row is None else _units(row[0]) + 1
            db.execute(
                "INSERT INTO runs (run_id, job, pid, status, started_at, trigger, summary)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET pid = excluded.pid, status = 'running',"
                " finished_at = NULL,"
                " summary = json_set(summary, '$.units', ?)",
                (run_id, job, pid, "running", now, trigger, json.dumps({"units": 1}), units),
            )
        return closed

    def finish_run(
        self,
        job: str,
        run_id: str,
        status: str,
        summary: Mapping[str, Any],
        exit_status: int | None = None,
    ) -> list[ClosedAttempt]:
        """Close a run; documents it left running become failed/interrupted (returned).

        The summary is the finishing job unit's; when the run had more than one (OOM
        restarts), or none is given (cancelled, interrupted), its document counts are the
        whole run's, taken from the ledger."""
        with self._tx() as db:
            closed = _interrupt(db, job, time.time())
            for attempt in closed:
                self._settle(db, job, attempt.path)
            whole = _whole_run(db, job, run_id, summary, force=not summary)
            db.execute(
                "UPDATE runs SET status = ?, finished_at = ?, summary = ?,"
                " exit_status = coalesce(?, exit_status) WHERE run_id = ?",
                (status, time.time(), json.dumps(whole), exit_status, run_id),
            )
        return closed

    def close_attempts(self, job: str, run_id: str, *, oom_unit: str = "") -> list[ClosedAttempt]:
        """The daemon's part once a job unit of `run_id` is gone: the attempts its runner
        left `running` (it was killed before it could record them) are closed now, their
        spend folded in. `oom_unit`: the unit ended with oom-kill; a document that was
        alone in it was the kernel's victim, so its attempt counts (ClosedAttempt)."""
        with self._tx() as db:
            closed = _interrupt(db, job, time.time(), run_id=run_id, oom_unit=oom_unit)
            for attempt in closed:
                self._settle(db, job, attempt.path)
        return closed

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
        job_units: Sequence[str] = (),
    ) -> None:
        """What the daemon knows of a run once it is over: its exit status, what started it,
        how long the service was down and how each job unit ended (`job_units`, e.g.
        oom-kill, oom-kill, exit-code). A run that never reached its job unit (preflight
        failed) gets its row here; a run the pipeline recorded keeps its own status (finished,
        stopped), unless its last unit died before it could record one, or was stopped
        (then the daemon's: failed after an OOM kill, cancelled, ...; with the whole run's
        document counts from the ledger when the unit left none)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT status, summary FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO runs (run_id, job, pid, status, started_at, finished_at,"
                    " exit_status, trigger, service_downtime) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
                    (run_id, job, status, started_at, time.time(), exit_status, trigger,
                     service_downtime),
                )  # fmt: skip
                return
            recorded, text = row
            summary = _summary(text)
            if recorded == "running":  # the last job unit died before it finished the run
                summary = _whole_run(db, job, run_id, summary, force=True)
            # 'cancelled' from the pipeline says only that its unit was stopped: by the
            # operator (the daemon says cancelled too) or by systemd after an OOM kill (failed)
            if job_units:
                summary["job_units"] = list(job_units)
            db.execute(
                "UPDATE runs SET exit_status = ?, trigger = ?, service_downtime = ?,"
                " finished_at = coalesce(finished_at, ?), summary = ?,"
                " status = CASE WHEN status IN ('running', 'cancelled') THEN ? ELSE status END"
                " WHERE run_id = ?",
                (exit_status, trigger, service_downtime, time.time(), json.dumps(summary),
                 status, run_id),
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
                " warnings = ?, timings = ?, peak_rss = ?, peak_own = ?, finished_at = ?,"
                " updated_at = ?"
                " WHERE job = ? AND path = ?",
                (
                    *values,
                    json.dumps(bounded_warnings(outcome.warnings)),
                    json.dumps(dict(outcome.timings)),
                    outcome.peak_rss,
                    outcome.peak_own,
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
                f"SELECT max(id) AS last, {JOURNAL_SUMS}, coalesce(max(currency), '') AS currency"
                " FROM spend"
                " WHERE job = ? AND document = ? AND id > ?",
                (job, path, mark),
            ).fetchone()
        except sqlite3.Error as exc:  # folded later: the rows stay after the mark
            log.warning("spend journal %s unreadable: %s", self._journal_path, exc)
            return
        if found is None or found["last"] is None:
            return
        last = found["last"]
        values = usage_values(usage_of(found))
        db.execute(
            f"UPDATE documents SET {ADD_USAGE}, {CURRENCY}, spend_mark = ?"
            " WHERE job = ? AND path = ?",
            (*values, last, job, path),
        )
        db.execute(f"UPDATE runs SET {ADD_USAGE}, {CURRENCY} WHERE run_id = ?",
                   (*values, run_id))  # fmt: skip

    def _open_journal(self) -> sqlite3.Connection | None:
        """The journal, once it exists (workers create it with their first answer)."""
        if self._journal is not None or self._journal_path is None:
            return self._journal
        if not self._journal_path.exists():
            return None
        try:
            conn = sqlite3.connect(self._journal_path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
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


def _interrupt(
    db: sqlite3.Connection, job: str, now: float, *, run_id: str | None = None, oom_unit: str = ""
) -> list[ClosedAttempt]:
    """Close the attempts left `running` (of `run_id`, or of any run of the job).

    An interrupted attempt was not the document's fault: it gets the attempt back. Except
    when its worker was killed before and this was the retry: under OOMPolicy=stop the
    retry is stopped together with the unit its own OOM kill ended, so it stays the suspect.
    And except when the daemon saw the unit end with oom-kill (`oom_unit`) while this was the
    only document in it: its worker was the kernel's victim (workers have oom_score_adj 1000).
    """
    where, params = ("AND run_id = ?", (job, run_id)) if run_id else ("", (job,))
    rows = db.execute(
        "SELECT path, coalesce(run_id, '?'), attempts, error_class, coalesce(error_message, '')"
        f" FROM documents WHERE job = ? AND status = 'running' {where} ORDER BY path",
        params,
    ).fetchall()
    closed = [_closed(job, row, victim=bool(oom_unit) and len(rows) == 1, unit=oom_unit)
              for row in rows]  # fmt: skip
    db.executemany(
        "UPDATE documents SET status = 'failed', attempts = ?, error_class = ?,"
        " error_message = ?, updated_at = ? WHERE job = ? AND path = ?",
        [(a.attempts, a.error_class.value, a.message, now, job, a.path) for a in closed],
    )
    return closed


def _closed(job: str, row: Sequence[Any], *, victim: bool, unit: str) -> ClosedAttempt:
    path, run_id, attempts, error_class, message = row
    if victim:
        message = f"worker killed by the OOM killer: the only document in {unit} when it was"
        message += " OOM-killed (its runner could not record it)"
        return ClosedAttempt(job, path, run_id, attempts, attempts, ErrorClass.KILLED, message)
    if error_class == ErrorClass.KILLED.value:
        message += " (retried; that run was stopped too)"
        return ClosedAttempt(job, path, run_id, attempts, attempts, ErrorClass.KILLED, message)
    message = f"the run processing it ended before it finished ({run_id})"
    return ClosedAttempt(
        job, path, run_id, attempts, max(attempts - 1, 0), ErrorClass.INTERRUPTED, message
    )


def _summary(text: object) -> dict[str, Any]:
    """A run row's summary; a damaged one is replaced, not raised: it only feeds history."""
    try:
        value = json.loads(text) if isinstance(text, str | bytes) else None
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _units(text: object) -> int:
    """How many job units a run row has had (1 for rows written before units were counted)."""
    value = _summary(text).get("units", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def _whole_run(
    db: sqlite3.Connection,
    job: str,
    run_id: str,
    summary: Mapping[str, Any],
    *,
    force: bool = False,
) -> dict[str, Any]:
    """A job unit's summary, made the whole run's when the run had several units (OOM
    restarts; `force`: the last unit left no summary): done, failed and processed count the
    documents whose last attempt was this run's, unchanged those done by an earlier run.
    Interrupted documents (attempt given back) count as neither done nor failed."""
    row = db.execute("SELECT summary FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    units = 1 if row is None else _units(row[0])
    merged = {**summary, "units": units}
    if units == 1 and not force:
        return merged
    done, failed, processed, unchanged = db.execute(
        "SELECT coalesce(sum(run_id = ?1 AND status = 'done'), 0),"
        " coalesce(sum(run_id = ?1 AND status = 'failed' AND coalesce(error_class, '') != ?2), 0),"
        " coalesce(sum(run_id = ?1), 0),"
        " coalesce(sum(coalesce(run_id, '') != ?1 AND status = 'done'), 0)"
        " FROM documents WHERE job = ?3",
        (run_id, ErrorClass.INTERRUPTED.value, job),
    ).fetchone()
    return {**merged, "done": done, "failed": failed, "processed": processed,
            "unchanged": unchanged}  # fmt: skip


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
            f"UPDATE documents SET {RESET_USAGE}, currency = '' WHERE job = ? AND path = ?",
            (job, f.path),
        )
