"""Untrusted names and messages on terminals and in logs: control characters escaped."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from lexi_maint.errors import ErrorClass
from lexi_maint.pipeline.contract import Failure
from lexi_maint.printable import EscapeArguments, printable
from lexi_maint.report.progress import format_document
from lexi_maint.run.events import DocumentFinished
from lexi_maint.systemd.journal import StderrHandler

HOSTILE = "evil\x1b[2J\x1b]0;pwned\x07\nINFO forged line\u202egnp.txt"


def test_printable_escapes_every_control_character() -> None:
    assert printable(HOSTILE) == ("evil\\x1b[2J\\x1b]0;pwned\\x07\\nINFO forged line\\u202egnp.txt")
    assert printable("Artikel 5 · loon € 2.000,00") == "Artikel 5 · loon € 2.000,00"


def test_a_hostile_file_name_in_progress_output_stays_one_harmless_line() -> None:
    event = DocumentFinished(
        path=f"/in/{HOSTILE}", outcome=Failure(ErrorClass.EMPTY, f"bad\n{HOSTILE}", False),
        attempt=1, seconds=0.1, requeued=False, done=0, failed=1, finished=1, queued=1,
        eta_seconds=None,
    )  # fmt: skip
    line = format_document(event)
    assert "\n" not in line and "\x1b" not in line and "\x07" not in line
    assert "evil\\x1b[2J" in line


def test_log_arguments_are_escaped_but_the_template_is_not() -> None:
    stream = io.StringIO()
    handler = StderrHandler(stream, prefix=False)
    handler.addFilter(EscapeArguments())
    logger = logging.getLogger("test_printable")
    logger.addHandler(handler)
    try:
        logger.warning("skipping %s: %s", Path(f"/in/{HOSTILE}"), ValueError("x\ny"))
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text
    assert "skipping /in/evil\\x1b[2J" in text and "x\\ny" in text
