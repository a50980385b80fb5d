"""Secrets (the model API key, the Memgraph password): the one type that holds one, and
the one place that reads one from a file.

`Secret` keeps its value out of every message: it prints as `ApiKey(…1234 from SOURCE)`
or `Password(from SOURCE)`, refuses to be pickled (it reaches workers by fork, or each
process reads it), and `redact` removes it from any text (error messages may echo it).

A file named in the configuration must not be readable by group or others; a systemd
credential (`$CREDENTIALS_DIRECTORY/NAME`) is trusted as systemd laid it out. Errors name
the file, never its content.
"""

from __future__ import annotations

import stat
from pathlib import Path

from lexi_maint.errors import UsageError


class Secret:
    """A secret value; `reveal()` is called only where it is sent (an Authorization header,
    a Bolt auth token). `kind` names it ("api key", "password"); `tail` shows its last 4
    characters in repr (an API key, so an operator can tell which one), never a password's."""

    __slots__ = ("_secret", "_tail", "kind", "source")

    def __init__(self, secret: str, source: str, *, kind: str, tail: bool = False) -> None:
        self._secret = secret
        self._tail = tail
        self.kind = kind
        self.source = source  # where it came from, for messages ("key file /etc/...")

    def reveal(self) -> str:
        return self._secret

    def redact(self, text: str) -> str:
        return text.replace(self._secret, redacted(self.kind)) if self._secret else text

    def __repr__(self) -> str:
        label = "".join(word.capitalize() for word in self.kind.split())
        shown = f"…{self._secret[-4:]} " if self._tail else ""
        return f"{label}({shown}from {self.source})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError(f"a secret ({self.kind}) is not pickled: it reaches workers by fork only")


def redacted(kind: str) -> str:
    """What stands in a message where a secret of `kind` was: "[api key redacted]"."""
    return f"[{kind} redacted]"


def read_secret_file(
    path: Path, source: str, *, check_mode: bool, max_bytes: int, what: str
) -> str:
    """The file's text. `source` names it in errors ("password file /etc/..."); `what` says
    what it should hold ("a password file")."""
    try:
        info = path.stat()
        if check_mode and stat.S_IMODE(info.st_mode) & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise UsageError(
                f"{source} is accessible to group or others (mode {mode:04o}); "
                f"run: chmod 600 {path}"
            )
        if info.st_size > max_bytes:
            raise UsageError(f"{source} is {info.st_size} bytes: not {what}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UsageError(f"cannot read {source}: {reason}") from None
