"""The response cache and the spend journal: answers already paid for, and what each cost.

`<state_dir>/llm/responses.sqlite3`, SQLite in WAL mode.

`answers`: one row per answered request, keyed by `ChatRequest.key` (sha256 of the exact
request body: model, messages and every parameter). Only answers that passed validation
are stored, so a blank or malformed answer is asked again rather than replayed.
`reasoning_content` is never stored.

`spend`: the journal, one row per answered call (valid or not: the provider bills both)
and per answer reused from the cache, tagged with the job and the document whose worker
made it. `record` writes a call's spend row and its answer in ONE transaction the moment
the answer arrives, so spend is never lost with the process that received it: a worker
SIGKILLed by the OOM killer or by document_timeout, or a whole run killed, leaves its
spend here. The ledger folds the rows into the document's and the run's totals when the
attempt ends, or when the next run finds the attempt interrupted (`lexi_maint.run.ledger`).
Rows are append-only; the ledger keeps, per document, the id of the last row it folded.

Durability: every write is its own committed transaction. SQLite commits atomically, so a
process killed at any moment (SIGKILL, OOM) leaves every earlier row intact and no partial
row; synchronous=NORMAL, so a power loss may drop the last few rows (those answers are
paid for again and that spend is not counted), never corrupt the file. Worker processes
each open their own connection.

A cache that cannot be read or written is logged and bypassed: it saves money, it is not
needed to get the job done.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.llm.client import Completion
from lexi_maint.llm.usage import Tokens, Usage

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    content TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cache_hit_tokens INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS spend (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    document TEXT NOT NULL,
    calls INTEGER NOT NULL,
    cached_answers INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cache_hit_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    reused_cost REAL NOT NULL,
    currency TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS spend_by_document ON spend (job, document, id);
"""
SPEND_COLUMNS = ("calls", "cached_answers", "prompt_tokens", "completion_tokens",
                 "reasoning_tokens", "cache_hit_tokens", "cost", "reused_cost")  # fmt: skip


@dataclass(frozen=True)
class SpendTag:
    """Whose spend a row is: the job and the document (its path as the ledger keys it)."""

    job: str
    document: str


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = _open(path)
        except (sqlite3.Error, OSError) as exc:
            log.warning("response cache %s unusable, calls are not cached: %s", path, exc)

    @staticmethod
    def prepare(path: Path) -> None:
        """Create the file, its WAL mode and its tables once, in the runner, before any
        worker opens it: workers that race to create it can be refused with "database is
        locked" (switching to WAL takes an exclusive lock the busy timeout does not wait
        for), and a worker without the journal would lose its spend rows."""
        try:
            _open(path).close()
        except (sqlite3.Error, OSError) as exc:
            log.warning("response cache %s unusable, calls are not cached: %s", path, exc)

    def get(self, key: str) -> Completion | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT content, finish_reason, prompt_tokens, completion_tokens,"
                " reasoning_tokens, cache_hit_tokens FROM answers WHERE key = ?",
                (key,),
            ).fetchone()
        except sqlite3.Error as exc:
            log.warning("response cache %s: read failed: %s", self.path, exc)
            return None
        if row is None:
            return None
        content, finish, *counts = row
        return Completion(str(content), str(finish), Tokens(*(int(c) for c in counts)))

    def put(self, key: str, model: str, answer: Completion) -> None:
        self.record(None, Usage(), (key, model, answer))

    def record(
        self, tag: SpendTag | None, usage: Usage, answer: tuple[str, str, Completion] | None
    ) -> None:
        """In one transaction: the spend row of `usage` (when tagged) and the answer
        `(key, model, completion)` to keep (when it passed validation)."""
        if self._conn is None:
            return
        now = time.time()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if tag is not None:
                    _insert_spend(self._conn, tag, usage, now)
                if answer is not None:
                    _insert_answer(self._conn, *answer, now)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.warning("response cache %s: write failed: %s", self.path, exc)

    def drop(self, key: str) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("DELETE FROM answers WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            log.warning("response cache %s: delete failed: %s", self.path, exc)

    def keys(self) -> set[str]:
        if self._conn is None:
            return set()
        return {str(row[0]) for row in self._conn.execute("SELECT key FROM answers")}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


_OPEN_ATTEMPTS = 5


def _open(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode with the tables in place. The mode and the tables are
    written only when missing (both need a write lock); "database is locked" while
    another process holds that lock is retried a few times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_OPEN_ATTEMPTS):
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if not _has_tables(conn):
                conn.executescript(_SCHEMA)
            return conn
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or attempt == _OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
        except BaseException:
            conn.close()
            raise
    raise AssertionError("unreachable")


def _has_tables(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('answers', 'spend', 'spend_by_document')"
    ).fetchone()
    return int(found[0]) == 3


def _insert_answer(conn: sqlite3.Connection, key: str, model: str, answer: Completion,
                   now: float) -> None:  # fmt: skip
    t = answer.tokens
    conn.execute(
        "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, model, answer.content, answer.finish_reason, t.prompt_tokens,
         t.completion_tokens, t.reasoning_tokens, t.cache_hit_tokens, now),
    )  # fmt: skip


def _insert_spend(conn: sqlite3.Connection, tag: SpendTag, usage: Usage, now: float) -> None:
    values = [getattr(usage, name) for name in SPEND_COLUMNS]
    conn.execute(
        f"INSERT INTO spend (job, document, {', '.join(SPEND_COLUMNS)}, currency, created_at)"
        f" VALUES (?, ?, {', '.join('?' for _ in SPEND_COLUMNS)}, ?, ?)",
        (tag.job, tag.document, *values, usage.currency, now),
    )
