"""The Memgraph password: where it comes from, and keeping it out of every message.

Where the password comes from, first match wins:
    1. `$CREDENTIALS_DIRECTORY/memgraph-password`: a systemd credential
       (`LoadCredential=memgraph-password:/etc/lexi-maint/memgraph-password`);
    2. the file named by `[graph.memgraph] password_file`; it must not be readable or
       writable by group or others (mode 0600 or 0400), else lexi-maint refuses it.
No password at all means no authentication (a Memgraph without users).

The file holds the password on its first line; a trailing newline is not part of it. The
password is read in each process that connects (the runner and every worker); it never
travels in `GraphTarget`, argv or the environment. It is a `Secret`: it prints as
`Password(from ...)`, refuses to be pickled, and `redact` removes it from any text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import UsageError
from lexi_maint.secretfile import Secret, read_secret_file, redacted

CREDENTIAL_NAME = "memgraph-password"
KIND = "password"
REDACTED = redacted(KIND)
_MAX_BYTES = 4096


def password(value: str, source: str) -> Secret:
    return Secret(value, source, kind=KIND)


@dataclass(frozen=True)
class Credentials:
    """What the Bolt connection authenticates with; `password` None means no auth."""

    username: str
    password: Secret | None

    def redact(self, text: str) -> str:
        return self.password.redact(text) if self.password else text


def load_credentials(
    config: MemgraphConfig, environ: Mapping[str, str] = os.environ
) -> Credentials:
    """The username from the config and the password from the first source that has one."""
    password = _password(config, environ)
    if password is not None and not config.username:
        raise UsageError(
            f"a Memgraph password was found ({password.source}) but [graph.memgraph] "
            "username is not set"
        )
    return Credentials(config.username, password)


def _password(config: MemgraphConfig, environ: Mapping[str, str]) -> Secret | None:
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        if path.exists():
            return _from_file(path, f"systemd credential {path}", check_mode=False)
    if config.password_file is not None:
        path = config.password_file
        return _from_file(path, f"password file {path}", check_mode=True)
    return None


def _from_file(path: Path, source: str, *, check_mode: bool) -> Secret:
    text = read_secret_file(
        path, source, check_mode=check_mode, max_bytes=_MAX_BYTES, what="a password file"
    )
    return password(_first_line(text, source), source)


def _first_line(text: str, source: str) -> str:
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise UsageError(f"{source} is empty")
    if any(line.strip() for line in lines[1:]):
        raise UsageError(f"{source} holds more than one line; put only the password in it")
    return lines[0]
