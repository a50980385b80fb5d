"""The response cache: answers already paid for, kept in the state directory.

`<state_dir>/llm/responses.sqlite3`, SQLite in WAL mode, one row per answered request,
keyed by `ChatRequest.key` (sha256 of the exact request body: model, messages and every
parameter). Only answers that passed validation are stored, so a blank or malformed answer
is asked again rather than replayed. `reasoning_content` is never stored.

Durability: every answer is its own committed transaction. SQLite commits atomically, so a
process killed at any moment (SIGKILL, OOM) leaves every earlier answer intact and no
partial row; synchronous=NORMAL, so a power loss may drop the last few answers (they are
paid for again), never corrupt the file. Worker processes each open their own connection.

A cache that cannot be read or written is logged and bypassed: it saves money, it is not
needed to get the job done.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from lexi_maint.llm.client import Completion
from lexi_maint.llm.usage import Tokens

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
)
"""


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
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
        if self._conn is None:
            return
        t = answer.tokens
        try:
            self._conn.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, model, answer.content, answer.finish_reason, t.prompt_tokens,
                 t.completion_tokens, t.reasoning_tokens, t.cache_hit_tokens, time.time()),
            )  # fmt: skip
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
