"""Workers that open a fresh response cache at the same moment all get the spend journal.

Switching a new SQLite file to WAL mode takes an exclusive lock that the busy timeout does
not wait for; a worker refused there used to run without the cache, and its spend rows
were lost.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from lexi_maint.llm.cache import ResponseCache, SpendTag
from lexi_maint.llm.usage import Usage

WORKERS = 12


def _open_and_record(path: Path, start: multiprocessing.synchronize.Event, n: int) -> None:
    start.wait()
    cache = ResponseCache(path)
    cache.record(SpendTag("job", f"doc{n}"), Usage(calls=1, currency="USD"), None)
    cache.close()


def test_workers_racing_to_create_the_cache_all_journal_their_spend(tmp_path: Path) -> None:
    path = tmp_path / "llm" / "responses.sqlite3"
    ctx = multiprocessing.get_context("fork")
    for _round in range(3):
        path.unlink(missing_ok=True)
        start = ctx.Event()
        procs = [
            ctx.Process(target=_open_and_record, args=(path, start, n)) for n in range(WORKERS)
        ]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT count(*), count(DISTINCT document) FROM spend").fetchone()
        assert rows == (WORKERS, WORKERS)
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_prepare_leaves_a_wal_file_with_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "llm" / "responses.sqlite3"
    ResponseCache.prepare(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"answers", "spend"} <= names
    ResponseCache.prepare(path)  # again: nothing to do, no error
