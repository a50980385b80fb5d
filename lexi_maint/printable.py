"""Untrusted text made safe to show: control characters as visible escapes.

File names and error messages come from whoever can write into the input directory, from
PDFs and from the model's answers. Written raw to a terminal, `\\x1b[2J` clears the
operator's screen and `\\x1b]0;…\\a` sets its title; a newline splits a log line in two and
forges the next one. `printable` shows every C0/C1 control character, DEL, the Unicode line
and paragraph separators and the bidirectional overrides as Python-style escapes.
"""

from __future__ import annotations

import logging
import os
import re

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def printable(text: str) -> str:
    """`text` with control characters escaped (`\\x1b`, `\\n`, `\\u202e`, ...)."""
    return _UNSAFE.sub(_escape, text)


class EscapeArguments(logging.Filter):
    """A handler filter: the arguments of a log call are escaped, its template is not.

    `log.warning("skipping %s", name)` keeps its own layout while a name holding a newline
    or an escape sequence shows up as `\\n` or `\\x1b`, on a terminal and in the journal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_safe(arg) for arg in record.args)
        return True


def _safe(arg: object) -> object:
    if isinstance(arg, str):
        return printable(arg)
    if isinstance(arg, os.PathLike | BaseException):
        return printable(str(arg))
    return arg
