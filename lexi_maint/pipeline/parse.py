"""The parse stage: a `.txt` or `.pdf` file in, plain text and a title out.

This is the only module that imports pypdf. Every problem with a document becomes a
`DocumentError` whose `ErrorClass` names the cause; no pypdf exception leaves it.

Checks, in order: the suffix (`.txt`, `.pdf`, any case), the resolved path stays inside the
job's input directory (symlinks are followed), the file is a regular file, it opens, it is
not empty and not larger than `ParseSettings.max_bytes`.

Text files are decoded as UTF-8 (a BOM is dropped; a UTF-16 BOM selects UTF-16) and fall
back to `ParseSettings.fallback_encoding` with a warning. Line endings become "\\n".

PDF pages are extracted one at a time from the open file (pypdf seeks in it; the file is
not read into memory) and joined with `PAGE_SEPARATOR`, so page N of a document starts
after the (N-1)th separator.

A long document is not held whole (`ParseStage.stream`, used by `lexi_maint.pipeline.stream`):
`StreamedTxt` and `StreamedPdf` yield the same text in pieces, with the same checks, title
and warnings. pypdf caches every object it parses; `_ObjectCacheTrimmer`
keeps that cache from growing with the page count. pypdf's own log records are counted
and re-logged at debug level: a damaged file gives one work warning, not one per page.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import signal
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import DependencyError, LimitReachedError

from lexi_maint.config.pipeline import ParseSettings
from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline.contract import ParsedDocument, Work

logger = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\f\n"
"""Between the texts of two PDF pages: a form feed on a line of its own."""

TITLE_MAX_CHARS = 200
_SNIFF_CHARS = 64 * 1024
_CONTROL_SHARE_LIMIT = 0.05
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_FIRST_LINE = re.compile(r"\S[^\n]*")
_NON_SPACE = re.compile(r"\S")
_MIB = 2**20


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
                parsed, warnings = parse_text(_read_all(handle, resolved), self._settings)
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


# --- checks before reading ----------------------------------------------------------------


def document_kind(path: Path) -> str:
    """ "txt" or "pdf" from the file name's suffix, in any case; anything else is unsupported."""
    suffix = path.suffix.lower()
    if suffix in (".txt", ".pdf"):
        return suffix[1:]
    shown = repr(path.suffix) if path.suffix else "no suffix"
    raise DocumentError(
        ErrorClass.UNSUPPORTED, f"unsupported file type ({shown}): lexi-maint reads .txt and .pdf"
    )


def resolve_inside(path: Path, input_root: Path) -> Path:
    """The real path of `path` (symlinks followed), which must lie inside `input_root`."""
    try:
        resolved = path.resolve(strict=True)
    except FileNotFoundError:
        raise DocumentError(
            ErrorClass.UNREADABLE, f"file not found (or a broken symlink): {path}"
        ) from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python 3.11
        raise DocumentError(
            ErrorClass.UNREADABLE, f"cannot resolve {path}: {_reason(exc)}"
        ) from exc
    problem = outside_input_problem(path, resolved, input_root.resolve())
    if problem is not None:
        raise problem
    return resolved


def outside_input_problem(path: Path, resolved: Path, root: Path) -> DocumentError | None:
    """The error for a file whose real location is outside the input directory, if it is."""
    if resolved.is_relative_to(root):
        return None
    if path.is_relative_to(root):
        message = f"symlink points outside the input directory: {resolved}"
    else:
        message = f"file is outside the input directory {root}: {path}"
    return DocumentError(ErrorClass.OUTSIDE_INPUT, message)


# A file with less than 1/16 of its length on disk is sparse (holes), not a document;
# compressing filesystems stay well above that for text. Small files may be inline (0 blocks).
_SPARSE_RATIO = 16
_SPARSE_MIN = _MIB


def file_problem(
    mode: int, size: int, max_bytes: int, blocks: int | None = None
) -> DocumentError | None:
    """The error for a file that is not a regular, non-empty, non-sparse file of a readable
    size (`blocks`: st_blocks, 512-byte units on disk)."""
    if not stat.S_ISREG(mode):
        return DocumentError(ErrorClass.NOT_A_FILE, f"not a regular file ({_file_type(mode)})")
    if size == 0:
        return DocumentError(ErrorClass.EMPTY, "file is empty (0 bytes)")
    if size > max_bytes:
        return DocumentError(
            ErrorClass.UNSUPPORTED,
            f"file is {size / _MIB:.1f} MiB, larger than the parse limit of "
            f"{max_bytes / _MIB:.1f} MiB (parse.max_bytes)",
        )
    if blocks is not None and size > _SPARSE_MIN and blocks * 512 * _SPARSE_RATIO < size:
        return DocumentError(
            ErrorClass.UNSUPPORTED,
            f"sparse file: {size / _MIB:.1f} MiB long but {blocks * 512 / 1024:.0f} KiB on disk",
        )
    return None


@contextmanager
def open_regular(path: Path, max_bytes: int) -> Iterator[BinaryIO]:
    """Open `path` for reading once it is known to be a regular file of an acceptable size.

    The type is checked before opening (a FIFO would block) and again on the open file.
    """
    _raise_if(_stat_problem(path, max_bytes))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot open {path}: {_reason(exc)}") from exc
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        _raise_if(file_problem(status.st_mode, status.st_size, max_bytes, status.st_blocks))
        yield handle


def _stat_problem(path: Path, max_bytes: int) -> DocumentError | None:
    try:
        status = path.stat()
    except OSError as exc:
        return DocumentError(ErrorClass.UNREADABLE, f"cannot stat {path}: {_reason(exc)}")
    return file_problem(status.st_mode, status.st_size, max_bytes)


def _raise_if(problem: DocumentError | None) -> None:
    if problem is not None:
        raise problem


def _file_type(mode: int) -> str:
    for test, label in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return label
    return f"mode {stat.filemode(mode)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _read_all(handle: BinaryIO, path: Path) -> bytes:
    try:
        return handle.read()
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot read {path}: {_reason(exc)}") from exc


# --- plain text ---------------------------------------------------------------------------


def parse_text(data: bytes, settings: ParseSettings) -> tuple[ParsedDocument, tuple[str, ...]]:
    """Decode a text file's bytes into a `ParsedDocument` and its warnings."""
    text, encoding, warnings = decode_text(data, settings.fallback_encoding)
    _raise_if(binary_problem(text))
    text = normalise_newlines(text)
    if not text.strip():
        raise DocumentError(ErrorClass.EMPTY, "file contains only whitespace")
    parsed = ParsedDocument(title=first_line(text), pages=0, text=text, encoding=encoding)
    return parsed, warnings


def decode_text(data: bytes, fallback: str) -> tuple[str, str, tuple[str, ...]]:
    """(text, encoding name, warnings): UTF-8 (BOM dropped), UTF-16 with a BOM, else `fallback`."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16", ()
        except UnicodeDecodeError as exc:
            raise DocumentError(
                ErrorClass.BINARY, f"starts with a UTF-16 mark but is not UTF-16 (byte {exc.start})"
            ) from None
    try:
        return data.decode("utf-8-sig"), "utf-8", ()
    except UnicodeDecodeError as exc:
        bad_byte = exc.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
    text = data.decode(fallback, errors="replace")
    warning = f"not valid UTF-8 (byte {bad_byte}); decoded as {fallback}"
    replaced = text.count("\ufffd")
    if replaced:
        warning += f" ({replaced} bytes undefined in {fallback} replaced by U+FFFD)"
    return text, fallback, (warning,)


def binary_problem(text: str) -> DocumentError | None:
    """BINARY if the text has NUL characters or too many other control characters."""
    if "\x00" in text:
        return DocumentError(ErrorClass.BINARY, "binary content: contains NUL bytes")
    sample = text[:_SNIFF_CHARS]
    share = len(_CONTROL_CHARS.findall(sample)) / max(len(sample), 1)
    if share > _CONTROL_SHARE_LIMIT:
        return DocumentError(
            ErrorClass.BINARY,
            f"binary content: {share:.0%} control characters in the first {len(sample)} characters",
        )
    return None


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def first_line(text: str) -> str:
    """The first non-empty line, trimmed and cut to `TITLE_MAX_CHARS`; "" if there is none."""
    match = _FIRST_LINE.search(text)
    return match.group().strip()[:TITLE_MAX_CHARS] if match else ""


# --- reading a long text piece by piece ---------------------------------------------------

STREAM_BLOCK = 1 << 20  # bytes read (and about as many characters yielded) at a time


class StreamedText(Protocol):
    """A document's text, yielded in pieces by `pieces()` (once), never held whole.

    The pieces joined are the text `ParseStage.run` would give. `title`, `pages`, `encoding`
    and `warnings` are final once `pieces()` is exhausted; it raises the DocumentError
    `run` would raise, possibly after some pieces (a PDF without text is known at its end).
    """

    title: str
    pages: int
    encoding: str
    warnings: tuple[str, ...]

    def pieces(self) -> Iterator[str]: ...


class StreamedTxt:
    """A text file read twice in blocks: first to choose and check its encoding (as
    `decode_text` and `binary_problem` do), then to yield its text with normalised newlines
    (and to find its title, as `first_line` does)."""

    pages = 0

    def __init__(self, handle: BinaryIO, settings: ParseSettings) -> None:
        self._handle = handle
        self._fallback = settings.fallback_encoding
        self.title = ""
        self.encoding = "utf-8"
        self.warnings: tuple[str, ...] = ()

    def pieces(self) -> Iterator[str]:
        self.encoding, skip, self.warnings = self._choose_encoding()
        newline_pending = False
        title = _TitleLine()
        for piece in self._decoded(self.encoding, skip):
            if newline_pending:
                piece = "\r" + piece
            newline_pending = piece.endswith("\r")  # "\r\n" may straddle two blocks
            text = normalise_newlines(piece[:-1] if newline_pending else piece)
            title.feed(text)
            self.title = title.text
            if text:
                yield text
        if newline_pending:
            yield "\n"

    def _choose_encoding(self) -> tuple[str, int, tuple[str, ...]]:
        """(codec, BOM bytes to skip, warnings), after checking the whole file."""
        head = self._read_at(0, 4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self._check("utf-16", 0)
            return "utf-16", 0, ()
        skip = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
        bad_byte = self._check("utf-8", skip)
        if bad_byte is None:
            return "utf-8", skip, ()
        self._check(self._fallback, 0)
        replaced = sum(piece.count("\ufffd") for piece in self._decoded(self._fallback, 0))
        warning = f"not valid UTF-8 (byte {bad_byte}); decoded as {self._fallback}"
        if replaced:
            warning += f" ({replaced} bytes undefined in {self._fallback} replaced by U+FFFD)"
        return self._fallback, 0, (warning,)

    def _check(self, encoding: str, skip: int) -> int | None:
        """Decode the whole file once: the byte where UTF-8 fails (None when it does not);
        raise BINARY or EMPTY as `parse_text` would."""
        sample: list[str] = []
        sampled = 0
        blank = True
        try:
            for piece in self._decoded(encoding, skip, strict=encoding != self._fallback):
                if sampled < _SNIFF_CHARS:
                    sample.append(piece[: _SNIFF_CHARS - sampled])
                    sampled += len(sample[-1])
                if "\x00" in piece:
                    _raise_if(binary_problem("\x00"))
                blank = blank and not piece.strip()
        except _Undecodable as exc:
            if encoding == "utf-16":
                raise DocumentError(
                    ErrorClass.BINARY,
                    f"starts with a UTF-16 mark but is not UTF-16 (byte {exc.offset})",
                ) from None
            return exc.offset
        _raise_if(binary_problem("".join(sample)))
        if blank:
            raise DocumentError(ErrorClass.EMPTY, "file contains only whitespace")
        return None

    def _decoded(self, encoding: str, skip: int, *, strict: bool = False) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(encoding)("strict" if strict else "replace")
        self._handle.seek(skip)
        offset = skip  # of the next block
        while True:
            block = self._read(STREAM_BLOCK)
            try:
                piece = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                buffered = len(exc.object) - len(block)  # bytes held over from the last block
                raise _Undecodable(offset - buffered + exc.start) from None
            offset += len(block)
            if piece:
                yield piece
            if not block:
                return

    def _read(self, size: int) -> bytes:
        try:
            return self._handle.read(size)
        except OSError as exc:
            raise DocumentError(ErrorClass.UNREADABLE, f"cannot read: {_reason(exc)}") from exc

    def _read_at(self, offset: int, size: int) -> bytes:
        self._handle.seek(offset)
        return self._read(size)


class _TitleLine:
    """`first_line` of a text given in pieces."""

    def __init__(self) -> None:
        self._head = ""  # the line's first TITLE_MAX_CHARS characters
        self._started = False
        self._more = False  # a non-space character after those
        self._done = False

    @property
    def text(self) -> str:
        return self._head if self._more else self._head.rstrip()

    def feed(self, piece: str) -> None:
        if self._done:
            return
        if not self._started:
            first = _NON_SPACE.search(piece)
            if first is None:
                return
            piece, self._started = piece[first.start() :], True
        end = piece.find("\n")
        line = piece if end < 0 else piece[:end]
        room = TITLE_MAX_CHARS - len(self._head)
        self._head += line[:room]
        self._more = self._more or _NON_SPACE.search(line, room) is not None
        self._done = end >= 0 or self._more


class _Undecodable(Exception):
    def __init__(self, offset: int) -> None:
        super().__init__(offset)
        self.offset = offset


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
        with _CapturedPypdfLog() as captured:
            try:
                with _open_reader(self._handle) as reader:
                    _unlock(reader)
                    self.title = _metadata_title(reader)[:TITLE_MAX_CHARS]
                    for page in _iter_pages(reader, self._page_seconds):
                        text = normalise_newlines(page).rstrip()
                        yield PAGE_SEPARATOR + text if self.pages else text
                        self.pages += 1
                        blank = blank and not page.strip()
                        self.title = self.title or first_line(text)
            except (DocumentError, MemoryError, GeneratorExit):
                raise
            except OSError as exc:
                raise DocumentError(
                    ErrorClass.UNREADABLE, f"cannot read PDF: {_reason(exc)}"
                ) from exc
            except Exception as exc:  # as in _read_pdf: no pypdf exception may escape
                raise DocumentError(
                    ErrorClass.PDF_CORRUPT, f"cannot read PDF: {_describe(exc)}"
                ) from exc
        self.warnings = (captured.summary(),) if captured.count else ()
        if not self.pages:
            raise DocumentError(ErrorClass.PDF_CORRUPT, "PDF has no pages")
        if blank:
            raise DocumentError(
                ErrorClass.PDF_NO_TEXT,
                f"no text layer on any of {self.pages} pages; "
                "scanned PDFs need OCR, which lexi-maint does not do",
            )


# --- PDF ----------------------------------------------------------------------------------


def parse_pdf(
    handle: BinaryIO, page_seconds: float = 0.0
) -> tuple[ParsedDocument, tuple[str, ...]]:
    """Extract a PDF's text page by page from an open binary file (each page within
    `page_seconds` of CPU time, when that is not 0)."""
    with _CapturedPypdfLog() as captured:
        pages, metadata_title = _read_pdf(handle, page_seconds)
    warnings = (captured.summary(),) if captured.count else ()
    if not pages:
        raise DocumentError(ErrorClass.PDF_CORRUPT, "PDF has no pages")
    if not any(page.strip() for page in pages):
        raise DocumentError(
            ErrorClass.PDF_NO_TEXT,
            f"no text layer on any of {len(pages)} pages; "
            "scanned PDFs need OCR, which lexi-maint does not do",
        )
    text = join_pages(pages)
    title = metadata_title[:TITLE_MAX_CHARS] or first_line(text)
    return ParsedDocument(title=title, pages=len(pages), text=text, encoding="pdf"), warnings


def join_pages(pages: list[str]) -> str:
    """Page texts with normalised newlines and no trailing blank space, joined by the separator."""
    return PAGE_SEPARATOR.join(normalise_newlines(page).rstrip() for page in pages)


def _read_pdf(handle: BinaryIO, page_seconds: float) -> tuple[list[str], str]:
    """(page texts, metadata title) with every pypdf failure translated."""
    try:
        with _open_reader(handle) as reader:
            _unlock(reader)
            return _extract_pages(reader, page_seconds), _metadata_title(reader)
    except (DocumentError, MemoryError):
        raise
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot read PDF: {_reason(exc)}") from exc
    except Exception as exc:  # pypdf raises many kinds on damaged files; none may escape
        raise DocumentError(ErrorClass.PDF_CORRUPT, f"cannot read PDF: {_describe(exc)}") from exc


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
        except (DocumentError, MemoryError):
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
