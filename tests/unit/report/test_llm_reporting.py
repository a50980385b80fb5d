"""Tokens and cost in the run summary, the per-document lines and `status`."""

from __future__ import annotations

from dataclasses import replace

from lexi_maint.errors import ErrorClass
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.report.progress import (
    format_document,
    format_started,
    format_stopped,
    format_summary,
    format_usage,
)
from lexi_maint.report.status import render_status, status_json
from lexi_maint.run.events import DocumentFinished, JobStopped, RunStarted, RunSummary
from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import Status

USAGE = Usage(
    calls=120,
    cached_answers=30,
    prompt_tokens=1_500_000,
    completion_tokens=42_000,
    reasoning_tokens=30_500,
    cache_hit_tokens=900_000,
    cost=0.4213,
    currency="USD",
    reused_cost=0.1,
)


SUMMARY = RunSummary(job="j", run_id="r", total=3, processed=3, done=3, failed=0, unchanged=0,
                     exhausted=0, vanished=0, failed_in_ledger=0, seconds=5.0)  # fmt: skip


def test_format_usage_shows_spent_and_reused_apart() -> None:
    assert format_usage(USAGE) == (
        "spent: 120 calls · tokens in 1.50M (900.0k cache hit), out 42.0k "
        "(30.5k reasoning) · cost 0.4213 USD · reused from cache: 30 answers"
        " (bought for 0.1000 USD)"
    )
    assert format_usage(Usage(calls=1, currency="USD")).endswith(
        "cost 0.0000 USD · reused from cache: 0 answers"
    )


def test_the_summary_shows_usage_only_when_there_was_some() -> None:
    assert "LLM:" not in format_summary(SUMMARY)
    text = format_summary(replace(SUMMARY, usage=USAGE))
    assert f"  LLM: {format_usage(USAGE)}" in text
    assert text.endswith("result: all documents done")
    assert replace(SUMMARY, usage=USAGE).to_json()["llm"] == USAGE.to_json()


def test_a_stopped_job_says_why_and_exits_3() -> None:
    stopped = replace(
        SUMMARY, done=1, stopped="insufficient balance (HTTP 402 ...)", left_pending=2
    )
    assert stopped.exit_code == 3
    assert format_summary(stopped).endswith(
        "result: job stopped, 2 documents left pending: insufficient balance (HTTP 402 ...)"
    )
    line = format_stopped(JobStopped("/in/a.txt", "the API key was rejected", 3))
    assert (
        line == "❌ job stopped by a.txt: the API key was rejected (3 running documents put back"
        " to pending)"
    )


def test_a_document_line_shows_its_tokens_and_cost() -> None:
    event = DocumentFinished("/in/a.txt", Success(4, {}, None, usage=USAGE), 1, 2.0, False,
                             1, 0, 1, 3, None)  # fmt: skip
    assert format_document(event) == "[1/3] ✅ a.txt 4 chunks 2.0 s · 1.54M tokens 0.4213 USD"
    plain = DocumentFinished("/in/a.txt", Success(4, {}, None), 1, 2.0, False, 1, 0, 1, 3, None)
    assert format_document(plain) == "[1/3] ✅ a.txt 4 chunks 2.0 s"
    failed = DocumentFinished(
        "/in/a.txt", Failure(ErrorClass.LLM_AUTH, "key rejected", False), 1, 2.0, False,
        0, 1, 1, 3, None)  # fmt: skip
    assert "llm_auth: key rejected" in format_document(failed)


def record(path: str, usage: Usage) -> DocumentRecord:
    return DocumentRecord("j", path, "aa", 1, Status.DONE, 1, None, None, (), {"chunk": 1.0},
                          None, 4, "r", 1.0, 2.0, usage)  # fmt: skip


def test_status_shows_totals_per_document_and_for_the_last_run() -> None:
    records = [record("/in/a.txt", USAGE), record("/in/b.txt", Usage())]
    last_run = {"run_id": "r", "status": "finished", "llm": USAGE.to_json()}
    text = render_status("j", records, last_run)
    assert f"LLM, documents in the ledger: {format_usage(USAGE)}" in text
    assert f"LLM, last run: {format_usage(USAGE)}" in text
    assert "a.txt · attempts 1 · 4 chunks 1.0 s · 1.54M tokens 0.4213 USD" in text
    assert text.count("tokens") == 3  # b.txt used no model
    data = status_json("j", records, last_run)
    assert data["llm"] == USAGE.to_json()
    assert data["documents"][0]["llm"]["reasoning_tokens"] == 30_500


def test_status_without_llm_use_looks_as_before() -> None:
    text = render_status("j", [record("/in/b.txt", Usage())], {"run_id": "r", "status": "x"})
    assert "LLM" not in text and "tokens" not in text


def test_one_document_is_one_document_in_every_line() -> None:
    started = RunStarted("j", "r", 1, 1, 0, 0, 0, 0)
    assert format_started(started) == "job j · run r · 1 document: 1 to process, 0 unchanged"
    one = replace(SUMMARY, total=1, processed=1, stopped="model API down", left_pending=1)
    text = format_summary(one)
    assert "  1 document · 1 processed:" in text
    assert text.endswith("result: job stopped, 1 document left pending: model API down")
    line = format_stopped(JobStopped("", "model API down", 1))
    assert line == "❌ job stopped: model API down (1 running document put back to pending)"
