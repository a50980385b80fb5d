"""The ledger's schema, its upgrades in place, and what a damaged ledger looks like.

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
    5  documents.peak_own: the worker's peak without the pages it shared with the runner
       (PEAKS in `lexi_maint.pipeline.contract`), the memory plan's per-worker figure.
       A read-only open (the memory plan as root) still reads a version 4 ledger, whose
       documents then have no peak_own: the plan falls back to peak_rss until a run has
       upgraded it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lexi_maint.errors import LedgerError

SCHEMA_VERSION = 5
READABLE_VERSIONS = (4, SCHEMA_VERSION)  # what open_readonly reads

SCHEMA = """
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
USAGE_COLUMNS = (
    ("llm_calls", "calls", "INTEGER NOT NULL DEFAULT 0"),
    ("llm_cached_answers", "cached_answers", "INTEGER NOT NULL DEFAULT 0"),
    ("prompt_tokens", "prompt_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("completion_tokens", "completion_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("reasoning_tokens", "reasoning_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cache_hit_tokens", "cache_hit_tokens", "INTEGER NOT NULL DEFAULT 0"),
    ("cost", "cost", "REAL NOT NULL DEFAULT 0"),
)
# Added by schema version 3 to both tables.
V3_USAGE_COLUMNS = (("reused_cost", "reused_cost", "REAL NOT NULL DEFAULT 0"),)
ALL_USAGE_COLUMNS = USAGE_COLUMNS + V3_USAGE_COLUMNS
ADD_USAGE = ", ".join(f"{column} = {column} + ?" for column, _, _ in ALL_USAGE_COLUMNS)
CURRENCY = "currency = CASE WHEN ? = '' THEN currency ELSE ? END"
HISTORY_COLUMNS = (
    ("exit_status", "INTEGER"),
    ("trigger", "TEXT NOT NULL DEFAULT ''"),
    ("service_downtime", "REAL"),
)
RESET_USAGE = ", ".join(f"{column} = 0" for column, _, _ in ALL_USAGE_COLUMNS)
USAGE_SELECT = ", ".join(column for column, _, _ in ALL_USAGE_COLUMNS) + ", currency"
DOCUMENT_SELECT = (
    "job, path, sha256, size, status, attempts, error_class, error_message, warnings, timings,"
    f" peak_rss, chunks, run_id, started_at, finished_at, {USAGE_SELECT}, peak_own"
)
V4_DOCUMENT_SELECT = DOCUMENT_SELECT.replace(", peak_own", ", NULL AS peak_own")
JOURNAL_SUMS = ", ".join(f"sum({name}) AS {column}" for column, name, _ in ALL_USAGE_COLUMNS)


def migrate(conn: sqlite3.Connection) -> None:
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
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < 2:
            for table in ("documents", "runs"):
                for column, _, declaration in USAGE_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                conn.execute(f"ALTER TABLE {table} ADD COLUMN currency TEXT NOT NULL DEFAULT ''")
        if version < 3:
            for table in ("documents", "runs"):
                for column, _, declaration in V3_USAGE_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            conn.execute("ALTER TABLE documents ADD COLUMN spend_mark INTEGER NOT NULL DEFAULT 0")
        if version < 4:
            for column, declaration in HISTORY_COLUMNS:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {declaration}")
        if version < 5:
            conn.execute("ALTER TABLE documents ADD COLUMN peak_own INTEGER")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_REASON_MAX = 300


def damaged_message(path: Path, exc: object) -> str:
    """One line: what is wrong with the ledger and the command that starts a new one."""
    aside = path.parent / "ledger.damaged"
    reason = " ".join(str(exc).split())[:_REASON_MAX]  # SQLite's integrity report has lines
    return (
        f"ledger {path} is damaged ({reason}); to start a new one, move it aside:"
        f" mkdir {aside} && mv {path}* {aside}/"  # the ledger and its -wal/-shm, if any
        " (the next run processes every document again; the graph is replaced document by"
        " document, nothing is duplicated)"
    )


def damaged(exc: sqlite3.Error | UnicodeDecodeError) -> bool:
    """Whether an error speaks of damaged content rather than access, locks or space."""
    if isinstance(exc, UnicodeDecodeError):  # a garbled name in the schema or a PRAGMA's text
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    if not isinstance(exc, sqlite3.OperationalError):
        return True  # "file is not a database", "database disk image is malformed", ...
    text = str(exc).lower()
    return any(word in text for word in ("decode", "malformed", "corrupt", "no such", "integrity"))
