"""Ledger schema versions 2-3: model usage per document and per run, folded in from the
spend journal (killed attempts included); release for stopped jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lexi_maint.errors import ErrorClass
from lexi_maint.llm.cache import ResponseCache, SpendTag
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_schema import SCHEMA_VERSION
from lexi_maint.run.plan import Found, Status, plan

V1_SCHEMA = """
CREATE TABLE documents (
    job TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
    attempts INTEGER NOT NULL DEFAULT 0, error_class TEXT, error_message TEXT,
    warnings TEXT NOT NULL DEFAULT '[]', timings TEXT NOT NULL DEFAULT '{}', peak_rss INTEGER,
    chunks INTEGER, run_id TEXT, started_at REAL, finished_at REAL, updated_at REAL NOT NULL,
    PRIMARY KEY (job, path));
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, job TEXT NOT NULL, pid INTEGER NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, finished_at REAL, summary TEXT NOT NULL DEFAULT '{}');
INSERT INTO documents VALUES ('j', '/in/old.txt', 'aa', 3, 'done', 1, NULL, NULL, '["w"]', '{}',
    10, 4, 'r0', 1.0, 2.0, 2.0);
INSERT INTO runs VALUES ('r0', 'j', 1, 'finished', 1.0, 2.0, '{}');
PRAGMA user_version = 1;
"""
U1 = Usage(calls=3, cached_answers=1, prompt_tokens=100, completion_tokens=40,
           reasoning_tokens=30, cache_hit_tokens=64, cost=0.25, currency="USD")  # fmt: skip
U2 = Usage(calls=2, prompt_tokens=10, completion_tokens=5, cost=0.5, currency="USD")


def last_usage(ledger: Ledger) -> object:
    """The `llm` field of job j's newest run, which must exist."""
    run = ledger.last_run("j")
    assert run is not None
    return run["llm"]


def test_a_version_1_ledger_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    with Ledger.open(path) as ledger:
        (old,) = ledger.documents("j")
        assert (old.status, old.chunks, old.warnings, old.usage) == (
            Status.DONE, 4, ("w",), Usage())  # fmt: skip
        assert last_usage(ledger) == Usage().to_json()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    with Ledger.open(path) as again:  # opening an upgraded ledger changes nothing
        assert again.documents("j") == [old]


@pytest.fixture()
def journal(tmp_path: Path) -> ResponseCache:
    return ResponseCache(tmp_path / "llm" / "responses.sqlite3")


@pytest.fixture()
def ledger(tmp_path: Path, journal: ResponseCache) -> Ledger:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3", spend_journal=journal.path)
    found = [Found("/in/a.txt", "aa", 1), Found("/in/b.txt", "bb", 1)]
    ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=3))
    ledger.start_run("j", "run1", 1)
    return ledger


def spend(journal: ResponseCache, path: str, usage: Usage) -> None:
    """What a worker does the moment an answer arrives."""
    journal.record(SpendTag("j", path), usage, None)


def test_usage_adds_up_per_document_and_per_run_failed_attempts_included(
    ledger: Ledger, journal: ResponseCache
) -> None:
    ledger.mark_running("j", "/in/a.txt", "run1")
    spend(journal, "/in/a.txt", U1)
    ledger.record("j", "/in/a.txt", Failure(ErrorClass.LLM_UNAVAILABLE, "503", True))
    ledger.mark_running("j", "/in/a.txt", "run1")
    spend(journal, "/in/a.txt", U2)
    ledger.record("j", "/in/a.txt", Success(2, {}, None, usage=U2))
    ledger.mark_running("j", "/in/b.txt", "run1")
    ledger.record("j", "/in/b.txt", Success(1, {}, None))
    a = ledger.document("j", "/in/a.txt")
    assert a.usage == U1 + U2 and a.attempts == 2
    assert a.to_json()["llm"]["prompt_tokens"] == 110
    assert ledger.document("j", "/in/b.txt").usage == Usage()
    assert Usage.from_json(last_usage(ledger)) == U1 + U2


def test_a_results_own_usage_is_not_counted_only_the_journal_is(ledger: Ledger) -> None:
    ledger.mark_running("j", "/in/a.txt", "run1")
    ledger.record("j", "/in/a.txt", Success(2, {}, None, usage=U1))  # nothing journalled
    assert ledger.document("j", "/in/a.txt").usage == Usage()


def test_a_killed_runs_spend_is_folded_in_when_the_next_run_starts(
    ledger: Ledger, journal: ResponseCache
) -> None:
    ledger.mark_running("j", "/in/a.txt", "run1")
    spend(journal, "/in/a.txt", U1)  # then the whole run is SIGKILLed: no record()
    assert [a.path for a in ledger.start_run("j", "run2", 2)] == ["/in/a.txt"]
    a = ledger.document("j", "/in/a.txt")
    assert (a.status, a.usage) == (Status.FAILED, U1)
    assert ledger.run_usage("run1") == U1 and ledger.run_usage("run2") == Usage()
    ledger.mark_running("j", "/in/a.txt", "run2")
    spend(journal, "/in/a.txt", U2)
    ledger.record("j", "/in/a.txt", Success(1, {}, None))
    ledger.settle("j", "/in/a.txt")  # folding again adds nothing
    assert ledger.document("j", "/in/a.txt").usage == U1 + U2
    assert ledger.run_usage("run1") == U1 and ledger.run_usage("run2") == U2


def test_spend_is_folded_in_when_a_stopped_job_releases_the_document(
    ledger: Ledger, journal: ResponseCache
) -> None:
    ledger.mark_running("j", "/in/b.txt", "run1")
    spend(journal, "/in/b.txt", U2)
    ledger.release("j", "/in/b.txt")
    assert ledger.document("j", "/in/b.txt").usage == U2 == ledger.run_usage("run1")


def test_changed_content_starts_the_documents_usage_again(
    ledger: Ledger, journal: ResponseCache
) -> None:
    ledger.mark_running("j", "/in/a.txt", "run1")
    spend(journal, "/in/a.txt", U1)
    ledger.record("j", "/in/a.txt", Success(2, {}, None, usage=U1))
    changed = [Found("/in/a.txt", "a2", 1)]
    ledger.apply_plan("j", changed, plan(changed, ledger.known("j"), reprocess=False,
                                         max_attempts=3))  # fmt: skip
    assert ledger.document("j", "/in/a.txt").usage == Usage()
    assert Usage.from_json(last_usage(ledger)) == U1


def test_release_puts_a_document_back_without_counting_the_attempt(ledger: Ledger) -> None:
    ledger.mark_running("j", "/in/a.txt", "run1")
    ledger.record("j", "/in/a.txt", Failure(ErrorClass.LLM_BALANCE, "no money", True))
    ledger.release("j", "/in/a.txt", keep_error=True)
    a = ledger.document("j", "/in/a.txt")
    assert (a.status, a.attempts, a.error_class, a.error_message) == (
        Status.PENDING, 0, "llm_balance", "no money")  # fmt: skip
    ledger.mark_running("j", "/in/b.txt", "run1")
    ledger.release("j", "/in/b.txt")
    b = ledger.document("j", "/in/b.txt")
    assert (b.status, b.attempts, b.error_class, b.started_at) == (Status.PENDING, 0, None, None)
