"""The parse stage: a `.txt` or `.pdf` file in, plain text and a title out.

The file is checked before it is read (`lexi_maint.pipeline.sourcefile`), then decoded as
text (`lexi_maint.pipeline.plaintext`) or its pages extracted (`lexi_maint.pipeline.pdf`,
the only module that imports pypdf). Every problem with a document becomes a
`DocumentError` whose `ErrorClass` names the cause.

A long document is not held whole (`ParseStage.stream`, used by `lexi_maint.pipeline.stream`):
`StreamedTxt` and `StreamedPdf` yield the same text in pieces, with the same checks, title
and warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import BinaryIO

from lexi_maint.config.pipeline import ParseSettings
from lexi_maint.pipeline.contract import Work
from lexi_maint.pipeline.pdf import StreamedPdf, parse_pdf
from lexi_maint.pipeline.plaintext import StreamedText, StreamedTxt, parse_text
from lexi_maint.pipeline.sourcefile import document_kind, open_regular, read_all, resolve_inside

logger = logging.getLogger(__name__)


class ParseStage:
    """Turns the document's file into a `ParsedDocument`.

    One document at a time per process: while a PDF is read, pypdf's logger is redirected
    (a process-wide setting), which is safe with the runner's worker processes, not threads.
    """

    name = "parse"

    def __init__(self, settings: ParseSettings) -> None:
        self._settings = settings

    def run(self, work: Work) -> Work:
        source = work.source
        kind = document_kind(source.path)
        resolved = resolve_inside(source.path, source.input_root)
        with open_regular(resolved, self._settings.max_bytes) as handle:
            if kind == "pdf":
                parsed, warnings = parse_pdf(handle, self._settings.page_seconds)
            else:
                parsed, warnings = parse_text(read_all(handle, resolved), self._settings)
        logger.debug(
            "parsed %s: %s characters, %s pages", source.path, len(parsed.text), parsed.pages
        )
        for warning in warnings:
            work = work.with_warning(warning)
        return replace(work, parsed=parsed)

    def stream(self, handle: BinaryIO, kind: str) -> StreamedText:
        """The text of an open document (see `open_document`), to be read piece by piece."""
        if kind == "pdf":
            return StreamedPdf(handle, self._settings.page_seconds)
        return StreamedTxt(handle, self._settings)

    @contextmanager
    def open_document(self, work: Work) -> Iterator[tuple[BinaryIO, str]]:
        """The document's file, checked as `run` checks it, and its kind ("txt", "pdf")."""
        kind = document_kind(work.source.path)
        resolved = resolve_inside(work.source.path, work.source.input_root)
        with open_regular(resolved, self._settings.max_bytes) as handle:
            yield handle, kind
