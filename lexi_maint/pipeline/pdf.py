"""PDF: the only module that imports pypdf; no pypdf exception leaves it (`NOT_THE_FILE` does).

Pages are extracted one at a time from the open file (pypdf seeks in it; the file is not
read into memory) and joined with `PAGE_SEPARATOR`, so page N of a document starts after
the (N-1)th separator; `StreamedPdf` yields them one at a time for a long document. pypdf
caches every object it parses; `_ObjectCacheTrimmer` keeps that cache from growing with the
page count. pypdf's own log records are counted and re-logged at debug level: a damaged
file gives one work warning, not one per page. Each page's extraction may be limited in CPU
time (`cpu_limit`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any, BinaryIO, Protocol

from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import DependencyError, LimitReachedError

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline.contract import ParsedDocument
from lexi_maint.pipeline.plaintext import (
    PAGE_SEPARATOR,
    TITLE_MAX_CHARS,
    first_line,
    normalise_newlines,
)
from lexi_maint.pipeline.sourcefile import reason

logger = logging.getLogger(__name__)

# Never a damaged file's doing: a missing module or a wrong name (in our code or pypdf's).
# They pass every `except Exception` below, so the worker logs the traceback and the
# document fails as a crash, instead of every PDF reading as pdf_corrupt.
NOT_THE_FILE = (NameError, ImportError)


class StreamedPdf:
    """A PDF's pages extracted one at a time (as `parse_pdf` does) and yielded as text,
    each page after the first preceded by `PAGE_SEPARATOR`."""

    encoding = "pdf"

    def __init__(self, handle: BinaryIO, page_seconds: float) -> None:
        self._handle = handle
        self._page_seconds = page_seconds
        self.title = ""
        self.pages = 0
        self.warnings: tuple[str, ...] = ()

    def pieces(self) -> Iterator[str]:
        blank = True
        with _CapturedPypdfLog() as captured, _translated(), _open_reader(self._handle) as reader:
            _unlock(reader)
            self.title = _metadata_title(reader)[:TITLE_MAX_CHARS]
            for page in _iter_pages(reader, self._page_seconds):
                text = normalise_newlines(page).rstrip()
                yield PAGE_SEPARATOR + text if self.pages else text
                self.pages += 1
                blank = blank and not page.strip()
                self.title = self.title or first_line(text)
        self.warnings = (captured.summary(),) if captured.count else ()
        _require_text(self.pages, blank=blank)


def parse_pdf(
    handle: BinaryIO, page_seconds: float = 0.0
) -> tuple[ParsedDocument, tuple[str, ...]]:
    """Extract a PDF's text page by page from an open binary file (each page within
    `page_seconds` of CPU time, when that is not 0)."""
    with _CapturedPypdfLog() as captured:
        pages, metadata_title = _read_pdf(handle, page_seconds)
    warnings = (captured.summary(),) if captured.count else ()
    _require_text(len(pages), blank=not any(page.strip() for page in pages))
    text = join_pages(pages)
    title = metadata_title[:TITLE_MAX_CHARS] or first_line(text)
    return ParsedDocument(title=title, pages=len(pages), text=text, encoding="pdf"), warnings


def join_pages(pages: list[str]) -> str:
    """Page texts with normalised newlines and no trailing blank space, joined by the separator."""
    return PAGE_SEPARATOR.join(normalise_newlines(page).rstrip() for page in pages)


def _read_pdf(handle: BinaryIO, page_seconds: float) -> tuple[list[str], str]:
    """(page texts, metadata title) with every pypdf failure translated."""
    with _translated(), _open_reader(handle) as reader:
        _unlock(reader)
        return _extract_pages(reader, page_seconds), _metadata_title(reader)


@contextmanager
def _translated() -> Iterator[None]:
    """Every failure reading a PDF (whole or streamed) as a DocumentError: the OS's as
    unreadable, pypdf's many kinds on damaged files as pdf_corrupt; none may escape."""
    try:
        yield
    except (DocumentError, MemoryError, *NOT_THE_FILE):
        raise
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot read PDF: {reason(exc)}") from exc
    except Exception as exc:
        raise DocumentError(ErrorClass.PDF_CORRUPT, f"cannot read PDF: {_describe(exc)}") from exc


def _require_text(pages: int, *, blank: bool) -> None:
    """A PDF without pages is corrupt; one whose pages hold no text needs OCR."""
    if not pages:
        raise DocumentError(ErrorClass.PDF_CORRUPT, "PDF has no pages")
    if blank:
        raise DocumentError(
            ErrorClass.PDF_NO_TEXT,
            f"no text layer on any of {pages} pages; "
            "scanned PDFs need OCR, which lexi-maint does not do",
        )


def _open_reader(handle: BinaryIO) -> PdfReader:
    try:
        return PdfReader(handle)
    except DependencyError as exc:  # only decryption needs an optional package at open time
        raise DocumentError(
            ErrorClass.PDF_ENCRYPTED, f"PDF is encrypted and cannot be decrypted here: {exc}"
        ) from exc


def _unlock(reader: PdfReader) -> None:
    """Open an encrypted PDF that has no user password (owner-password-only "protection")."""
    if not reader.is_encrypted:
        return
    try:
        result = reader.decrypt("")
    except DependencyError as exc:
        raise DocumentError(
            ErrorClass.PDF_ENCRYPTED, f"PDF is encrypted and cannot be decrypted here: {exc}"
        ) from exc
    if result == PasswordType.NOT_DECRYPTED:
        raise DocumentError(
            ErrorClass.PDF_ENCRYPTED,
            "PDF is protected by a password; provide a copy without a password to open it",
        )


def _extract_pages(reader: PdfReader, page_seconds: float) -> list[str]:
    return list(_iter_pages(reader, page_seconds))


PAGE_CONTENT_BYTES = 32_000_000
"""The most bytes one stream of a page may decompress to while its text is extracted."""
PAGE_CONTENT_TOKENS = 1_000_000
"""The most operands and operators a page's content stream may hold (pypdf's own default,
2,000,000, lets a 250 KB PDF hold a page that grows its worker past 380 MB)."""


def _iter_pages(reader: PdfReader, page_seconds: float) -> Iterator[str]:
    count = len(reader.pages)
    trimmer = _ObjectCacheTrimmer()
    for index in range(count):
        try:
            with (
                trimmer.trimming(reader),
                cpu_limit(page_seconds),
                apply_configuration(
                    zlib_maximum_output_length=PAGE_CONTENT_BYTES,
                    stream_parsing_work_maximum_count=PAGE_CONTENT_TOKENS,
                ),
            ):
                text = reader.pages[index].extract_text()
        except LimitReachedError as exc:
            raise DocumentError(
                ErrorClass.PDF_CORRUPT,
                f"page {index + 1} of {count} holds more content than lexi-maint reads from one"
                f" page ({PAGE_CONTENT_BYTES // 10**6} MB decompressed, {PAGE_CONTENT_TOKENS:,}"
                f" operands and operators): {_describe(exc)}",
            ) from None
        except _CpuLimit:
            raise DocumentError(
                ErrorClass.PDF_CORRUPT,
                f"page {index + 1} of {count} took more than {page_seconds:g} s of CPU"
                " (parse.page_seconds): a page built to burn CPU, or damaged",
            ) from None
        except (DocumentError, MemoryError, *NOT_THE_FILE):
            raise
        except Exception as exc:
            raise DocumentError(
                ErrorClass.PDF_CORRUPT, f"cannot read page {index + 1} of {count}: {_describe(exc)}"
            ) from exc
        yield text


class _CpuLimit(BaseException):
    """Raised by the SIGPROF handler inside a page that used up its CPU time.

    A BaseException, so that pypdf's own `except Exception` blocks cannot swallow it."""


@contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise _CpuLimit once this process has spent `seconds` of CPU time inside the block.

    ITIMER_PROF counts CPU time (user and system), so a page waiting on I/O is not cut
    short. Signals reach only the main thread: elsewhere (or with 0) there is no limit,
    and the worker's document_timeout still applies.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _CpuLimit()

    previous = signal.signal(signal.SIGPROF, expired)
    # it fires again every 0.1 s: one raised where a library swallows it is not the last
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _metadata_title(reader: PdfReader) -> str:
    """The document information title, or "" when absent or unreadable."""
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except NOT_THE_FILE:
        raise
    except Exception as exc:  # a damaged Info dictionary must not fail the document
        logger.debug("unreadable PDF metadata: %s", _describe(exc))
        return ""
    return " ".join(title.split()) if isinstance(title, str) else ""


def _describe(exc: BaseException) -> str:
    message = str(exc).strip()
    return f"{message} ({type(exc).__name__})" if message else type(exc).__name__


class _ObjectCache(Protocol):
    """What the trimmer uses of a `PdfReader`: its cache of parsed objects."""

    resolved_objects: dict[Any, Any]


class _ObjectCacheTrimmer:
    """Bounds pypdf's object cache (`PdfReader.resolved_objects`) while pages are read.

    pypdf keeps every object it has parsed, so each page's content stream would stay in
    memory until the reader closes. After each page the objects first parsed for it are
    dropped (pypdf parses them again from the file if they are needed). An object that is
    parsed again on a later page is shared (a font, an object stream) and is kept from then
    on, so the cache holds the page tree, the shared objects and one page at a time.
    """

    def __init__(self) -> None:
        self._dropped: set[Any] = set()

    @contextmanager
    def trimming(self, reader: _ObjectCache) -> Iterator[None]:
        before = len(reader.resolved_objects)
        try:
            yield
        finally:
            self._trim(reader.resolved_objects, before)

    def _trim(self, cache: dict[Any, Any], before: int) -> None:
        # pypdf only adds to the cache while reading, and dicts keep insertion order.
        added = list(islice(reversed(cache), max(len(cache) - before, 0)))
        for key in added:
            if key not in self._dropped:
                self._dropped.add(key)
                del cache[key]


class _CapturedPypdfLog(logging.Handler):
    """Counts pypdf's log records and re-logs them at debug level, instead of propagating."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0
        self.first = ""
        self._logger = logging.getLogger("pypdf")
        self._saved: tuple[bool, int] = (True, logging.NOTSET)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.count += 1
        self.first = self.first or message
        logger.debug("pypdf %s: %s", record.levelname.lower(), message)

    def summary(self) -> str:
        return f"pypdf reported {self.count} problem(s) while reading the PDF; first: {self.first}"

    def __enter__(self) -> _CapturedPypdfLog:
        self._saved = (self._logger.propagate, self._logger.level)
        self._logger.addHandler(self)
        self._logger.propagate = False
        self._logger.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate, level = self._saved
        self._logger.setLevel(level)
