"""Reading a secret (API key, password) from a file: the one place that does it.

A file named in the configuration must not be readable by group or others; a systemd
credential (`$CREDENTIALS_DIRECTORY/NAME`) is trusted as systemd laid it out. Errors name
the file, never its content.
"""

from __future__ import annotations

import stat
from pathlib import Path

from lexi_maint.errors import UsageError


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
