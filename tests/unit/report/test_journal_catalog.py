"""The journal catalog: an entry for every MESSAGE_ID the code logs, in journald's format."""

from __future__ import annotations

import re
from pathlib import Path

from lexi_maint.errors import ErrorClass
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.report.reporters import document_fields, summary_fields
from lexi_maint.run.events import DocumentFinished, RunSummary
from lexi_maint.systemd import journal

ROOT = Path(__file__).resolve().parents[3]
CATALOG = ROOT / "systemd" / "lexi-maint.catalog"
HEADER = re.compile(r"^-- ([0-9a-f]{32})$", re.MULTILINE)
HEX_ID = re.compile(r"['\"]([0-9a-f]{32})['\"]")


def entries() -> dict[str, list[str]]:
    text = CATALOG.read_text(encoding="utf-8")
    parts = HEADER.split(text)[1:]
    return {parts[i]: parts[i + 1].strip("\n").split("\n") for i in range(0, len(parts), 2)}


def test_every_message_id_in_the_code_has_one_catalog_entry() -> None:
    text = CATALOG.read_text(encoding="utf-8")
    ids = HEADER.findall(text)
    assert len(ids) == len(set(ids)), "an id appears twice"
    in_code = {
        m for f in (ROOT / "lexi_maint").rglob("*.py") for m in HEX_ID.findall(f.read_text())
    }
    assert set(journal.MESSAGE_IDS) <= in_code
    assert in_code == set(ids) == set(journal.MESSAGE_IDS)


def test_each_entry_has_a_subject_its_origin_a_blank_line_and_an_explanation() -> None:
    for message_id, lines in entries().items():
        head = lines[: lines.index("")]
        body = lines[lines.index("") + 1 :]
        keys = [line.split(":", 1)[0] for line in head]
        assert keys[0] == "Subject", message_id
        assert {"Subject", "Defined-By", "Support"} <= set(keys), message_id
        assert all(re.fullmatch(r"[A-Z][A-Za-z-]+: .+", line) for line in head), message_id
        assert any(line.strip() for line in body), f"{message_id}: no explanation"
        for field in re.findall(r"@([A-Z_]+)@", "\n".join(lines)):
            if field != "PREFIX":  # make install fills it in (test_install_files.py)
                assert field in journal.FIELDS, f"{message_id}: @{field}@ is never logged"


def test_document_and_summary_entries_carry_their_fields() -> None:
    ok = DocumentFinished("/in/a.txt", Success(1, {}, None), 1, 0.1, False, 1, 0, 1, 2, None)
    assert document_fields(ok) == {"lexi_document": "/in/a.txt", "lexi_outcome": "done"}
    bad = Failure(ErrorClass.PDF_ENCRYPTED, "password", False)
    failed = DocumentFinished("/in/b.pdf", bad, 1, 0.1, True, 1, 0, 1, 2, None)
    assert document_fields(failed) == {"lexi_document": "/in/b.pdf", "lexi_outcome": "retry",
                                       "lexi_error_class": "pdf_encrypted"}  # fmt: skip
    summary = RunSummary(job="j", run_id="r", total=9, processed=4, done=3, failed=1,
                         unchanged=3, exhausted=1, vanished=1, failed_in_ledger=1,
                         seconds=61.25)  # fmt: skip
    assert summary_fields(summary) == {"lexi_done": "3", "lexi_failed": "1",
                                       "lexi_skipped": "5", "lexi_duration": "61.2"}  # fmt: skip
    assert all(name.upper() in journal.FIELDS for name in summary_fields(summary))
