"""Plain text: a `.txt` file's bytes decoded, checked and titled, whole or piece by piece.

Text files are decoded as UTF-8 (a BOM is dropped; a UTF-16 BOM selects UTF-16) and fall
back to `ParseSettings.fallback_encoding` with a warning. Line endings become "\\n".
`StreamedTxt` yields the same text in pieces (`STREAM_BLOCK` bytes at a time), with the same
checks, title and warnings, for a document too long to hold whole.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from lexi_maint.config.pipeline import ParseSettings
from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline.contract import ParsedDocument
from lexi_maint.pipeline.sourcefile import raise_if, reason

PAGE_SEPARATOR = "\n\f\n"
"""Between the texts of two PDF pages: a form feed on a line of its own."""

TITLE_MAX_CHARS = 200
_SNIFF_CHARS = 64 * 1024
_CONTROL_SHARE_LIMIT = 0.05
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_FIRST_LINE = re.compile(r"\S[^\n]*")
_NON_SPACE = re.compile(r"\S")


def parse_text(data: bytes, settings: ParseSettings) -> tuple[ParsedDocument, tuple[str, ...]]:
    """Decode a text file's bytes into a `ParsedDocument` and its warnings."""
    text, encoding, warnings = decode_text(data, settings.fallback_encoding)
    raise_if(binary_problem(text))
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
                    raise_if(binary_problem("\x00"))
                blank = blank and not piece.strip()
        except _Undecodable as exc:
            if encoding == "utf-16":
                raise DocumentError(
                    ErrorClass.BINARY,
                    f"starts with a UTF-16 mark but is not UTF-16 (byte {exc.offset})",
                ) from None
            return exc.offset
        raise_if(binary_problem("".join(sample)))
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
            raise DocumentError(ErrorClass.UNREADABLE, f"cannot read: {reason(exc)}") from exc

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
