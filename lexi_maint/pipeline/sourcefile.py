"""A job's document file, checked before it is read.

Checks, in order: the suffix (`.txt`, `.pdf`, any case), the resolved path stays inside the
job's input directory (symlinks are followed), the file is a regular file, it opens, it is
not empty and not larger than `ParseSettings.max_bytes`. Every problem is a
`DocumentError` whose `ErrorClass` names the cause.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.units import MiB


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
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot resolve {path}: {reason(exc)}") from exc
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
_SPARSE_MIN = MiB


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
            f"file is {size / MiB:.1f} MiB, larger than the parse limit of "
            f"{max_bytes / MiB:.1f} MiB (parse.max_bytes)",
        )
    if blocks is not None and size > _SPARSE_MIN and blocks * 512 * _SPARSE_RATIO < size:
        return DocumentError(
            ErrorClass.UNSUPPORTED,
            f"sparse file: {size / MiB:.1f} MiB long but {blocks * 512 / 1024:.0f} KiB on disk",
        )
    return None


@contextmanager
def open_regular(path: Path, max_bytes: int) -> Iterator[BinaryIO]:
    """Open `path` for reading once it is known to be a regular file of an acceptable size.

    The type is checked before opening (a FIFO would block) and again on the open file.
    """
    raise_if(_stat_problem(path, max_bytes))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot open {path}: {reason(exc)}") from exc
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        raise_if(file_problem(status.st_mode, status.st_size, max_bytes, status.st_blocks))
        yield handle


def _stat_problem(path: Path, max_bytes: int) -> DocumentError | None:
    try:
        status = path.stat()
    except OSError as exc:
        return DocumentError(ErrorClass.UNREADABLE, f"cannot stat {path}: {reason(exc)}")
    return file_problem(status.st_mode, status.st_size, max_bytes)


def raise_if(problem: DocumentError | None) -> None:
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


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def read_all(handle: BinaryIO, path: Path) -> bytes:
    try:
        return handle.read()
    except OSError as exc:
        raise DocumentError(ErrorClass.UNREADABLE, f"cannot read {path}: {reason(exc)}") from exc
