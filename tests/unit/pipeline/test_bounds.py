"""Bounds no input can pass: analysis lists and strings, schema errors, ledger messages."""

from __future__ import annotations

import os
from pathlib import Path

from lexi_maint.errors import ErrorClass
from lexi_maint.pipeline.contract import MAX_MESSAGE, MAX_WARNINGS, Failure, Success
from lexi_maint.pipeline.schema import MAX_ITEMS, MAX_TEXT, SchemaError, parse_analysis
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.plan import Found, plan

EMPTY = {"section_title": "", "defined_terms": [], "dates": [], "amounts": [],
         "percentages": [], "references": [], "parties": []}  # fmt: skip


def test_an_analysis_with_20000_terms_keeps_the_first_ones_and_says_so() -> None:
    answer = {**EMPTY, "defined_terms": [f"term {i}" for i in range(20_000)],
              "section_title": "x" * 100_000}  # fmt: skip
    result = parse_analysis("c", answer)
    assert len(result.defined_terms) == MAX_ITEMS and len(result.section_title) == MAX_TEXT
    assert result.notes == (
        f"$.section_title: 100000 characters, kept the first {MAX_TEXT}",
        f"$.defined_terms: 20000 items, kept the first {MAX_ITEMS}",
    )
    assert "notes" not in result.to_json()


def test_400000_invalid_items_make_a_short_error() -> None:
    try:
        parse_analysis("c", {**EMPTY, "dates": [17] * 400_000})
    except SchemaError as exc:
        assert len(exc.message) < 2000 and exc.message.endswith("and 180 more")
    else:
        raise AssertionError("no SchemaError")


def test_the_ledger_keeps_messages_and_warnings_bounded(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "l.sqlite3") as ledger:
        found = [Found("/in/a.txt", "a" * 64, 1), Found("/in/b.txt", "b" * 64, 1)]
        ledger.start_run("j", "r", os.getpid())
        ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=3))
        for f in found:
            ledger.mark_running("j", f.path, "r")
        ledger.record("j", "/in/a.txt", Failure(ErrorClass.SCHEMA, "e" * 21_000_000, False))
        ledger.record("j", "/in/b.txt", Success(1, {}, None, tuple("w" * 5000 for _ in range(99))))
        a, b = ledger.documents("j")
    assert len(a.error_message or "") < MAX_MESSAGE + 100
    assert (a.error_message or "").endswith("(20997952 more characters)")
    assert len(b.warnings) == MAX_WARNINGS + 1 and b.warnings[-1] == "… and 79 more warnings"
    assert all(len(w) < MAX_MESSAGE + 100 for w in b.warnings)
