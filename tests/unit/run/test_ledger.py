from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lexi_maint.errors import ErrorClass, LedgerError
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_schema import SCHEMA_VERSION
from lexi_maint.run.plan import Found, Status, plan


@pytest.fixture()
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path / "state" / "ledger.sqlite3")


def seed(ledger: Ledger, found: list[Found], job: str = "j") -> None:
    decisions = plan(found, ledger.known(job), reprocess=False, max_attempts=3)
    ledger.apply_plan(job, found, decisions)


def test_wal_mode_and_schema(ledger: Ledger) -> None:
    conn = sqlite3.connect(ledger.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5


def test_document_lifecycle(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "aa", 10), Found("/in/b.txt", "bb", 20)])
    assert [r.status for r in ledger.documents("j")] == [Status.PENDING, Status.PENDING]
    ledger.start_run("j", "run1", 1)
    assert ledger.mark_running("j", "/in/a.txt", "run1") == 1
    ledger.record("j", "/in/a.txt", Success(3, {"parse": 0.1}, 1234, ("w",), peak_own=234))
    ledger.mark_running("j", "/in/b.txt", "run1")
    ledger.record("j", "/in/b.txt", Failure(ErrorClass.EMPTY, "zero bytes", False))
    a = ledger.document("j", "/in/a.txt")
    b = ledger.document("j", "/in/b.txt")
    assert (a.status, a.chunks, a.timings, a.peak_rss, a.peak_own, a.warnings) == (
        Status.DONE, 3, {"parse": 0.1}, 1234, 234, ("w",))  # fmt: skip
    assert a.to_json()["peak_own"] == 234
    assert (b.status, b.error_class, b.error_message, b.attempts) == (
        Status.FAILED, "empty", "zero bytes", 1)  # fmt: skip
    assert b.to_json()["error"] == {"class": "empty", "message": "zero bytes"}


def test_changed_content_resets_attempts_and_error(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "v1", 1)])
    ledger.mark_running("j", "/in/a.txt", "r")
    ledger.record("j", "/in/a.txt", Failure(ErrorClass.BINARY, "junk", False))
    seed(ledger, [Found("/in/a.txt", "v2", 2)])
    row = ledger.document("j", "/in/a.txt")
    assert (row.status, row.attempts, row.error_class, row.sha256) == (
        Status.PENDING, 0, None, "v2")  # fmt: skip


def test_a_dead_run_leaves_rows_interrupted_at_next_start(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "aa", 1)])
    ledger.start_run("j", "dead-run", 1)
    ledger.mark_running("j", "/in/a.txt", "dead-run")
    assert [a.path for a in ledger.start_run("j", "next-run", 2)] == ["/in/a.txt"]
    row = ledger.document("j", "/in/a.txt")
    assert row.status is Status.FAILED
    assert row.error_class == ErrorClass.INTERRUPTED.value
    assert row.attempts == 0  # not the document's fault: the attempt is given back
    assert "dead-run" in (row.error_message or "")
    runs = sqlite3.connect(ledger.path).execute("SELECT run_id, status FROM runs ORDER BY rowid")
    assert runs.fetchall() == [("dead-run", "interrupted"), ("next-run", "running")]


def test_vanished_document_becomes_skipped_and_is_kept(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "aa", 1)])
    seed(ledger, [])
    row = ledger.document("j", "/in/a.txt")
    assert (row.status, row.error_class) == (Status.SKIPPED, "missing")


def test_jobs_are_separate(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "aa", 1)], job="one")
    seed(ledger, [Found("/in/a.txt", "aa", 1)], job="two")
    ledger.mark_running("one", "/in/a.txt", "r")
    assert ledger.document("two", "/in/a.txt").status is Status.PENDING


def version_4_ledger(path: Path) -> None:
    """A ledger as lexi-maint wrote it before peak_own, with one done document."""
    with Ledger.open(path) as ledger:
        seed(ledger, [Found("/in/a.txt", "aa", 10)])
        ledger.mark_running("j", "/in/a.txt", "r")
        ledger.record("j", "/in/a.txt", Success(3, {}, 50_000_000))
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE documents DROP COLUMN peak_own")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()


def test_a_version_4_ledger_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    version_4_ledger(path)
    # read-only (the memory plan as root): no upgrade, the document has no peak_own
    with Ledger.open_readonly(path) as ledger:
        (old,) = ledger.documents("j")
    assert (old.peak_rss, old.peak_own) == (50_000_000, None)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (4,)
    with Ledger.open(path) as ledger:  # a run: upgraded in place, the old row kept
        assert ledger.document("j", "/in/a.txt").peak_own is None
        ledger.mark_running("j", "/in/a.txt", "r2")
        ledger.record("j", "/in/a.txt", Success(3, {}, 50_000_000, peak_own=9_000_000))
    with Ledger.open_readonly(path) as ledger:
        assert ledger.document("j", "/in/a.txt").peak_own == 9_000_000
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (5,)


def test_a_version_3_ledger_is_not_read_without_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    version_4_ledger(path)
    sqlite3.connect(path).execute("PRAGMA user_version = 3").connection.commit()
    with pytest.raises(LedgerError, match="schema version 3, not 5"):
        Ledger.open_readonly(path)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(LedgerError, match="newer than this lexi-maint"):
        Ledger.open(path)


def test_unopenable_ledger_is_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerError, match="cannot open ledger"):
        Ledger.open(blocker / "ledger.sqlite3")


def test_a_resumed_run_id_starts_again(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/a.txt", "aa", 1)])
    ledger.start_run("j", "run1", 1)
    ledger.mark_running("j", "/in/a.txt", "run1")
    ledger.start_run("j", "run1", 2)  # the daemon restarts the run after an OOM kill
    runs = sqlite3.connect(ledger.path).execute("SELECT run_id, status, pid FROM runs")
    assert runs.fetchall() == [("run1", "running", 2)]
    assert ledger.document("j", "/in/a.txt").error_class == "interrupted"


def test_an_interrupted_retry_of_a_killed_document_stays_the_suspect(ledger: Ledger) -> None:
    seed(ledger, [Found("/in/huge.txt", "hh", 1)])
    ledger.start_run("j", "run1", 1)
    ledger.mark_running("j", "/in/huge.txt", "run1")
    ledger.record("j", "/in/huge.txt", Failure(ErrorClass.KILLED, "worker killed by SIGKILL", True))
    ledger.mark_running("j", "/in/huge.txt", "run1")  # the runner's retry alone
    ledger.finish_run("j", "run1", "cancelled", {})  # systemd stops the unit (OOMPolicy=stop)
    row = ledger.document("j", "/in/huge.txt")
    assert (row.status, row.error_class, row.attempts) == (Status.FAILED, "killed", 2)
    assert "that run was stopped too" in (row.error_message or "")
