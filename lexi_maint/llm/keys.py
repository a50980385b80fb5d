"""Finding the model API key, and keeping it out of every message.

Where the key comes from, first match wins:
    1. `$CREDENTIALS_DIRECTORY/deepseek-api-key`: a systemd credential
       (`LoadCredential=deepseek-api-key:/etc/lexi-maint/deepseek-api-key`);
    2. the file named by `[llm] api_key_file`; it must not be readable or writable by
       group or others (mode 0600 or 0400), else lexi-maint refuses it;
    3. the environment variable DEEPSEEK_API_KEY (visible to the process's owner in
       /proc/PID/environ: prefer 1 or 2).

The key is read in the runner process and reaches the workers by fork, never through
argv or the environment. `ApiKey` prints as `api_key(…1234)`; `redact` removes it from any
text (API error messages may echo it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lexi_maint.config.llm import LlmConfig
from lexi_maint.errors import UsageError
from lexi_maint.secretfile import Secret, read_secret_file, redacted

CREDENTIAL_NAME = "deepseek-api-key"
ENV_NAME = "DEEPSEEK_API_KEY"
KIND = "api key"
REDACTED = redacted(KIND)
_MAX_KEY_BYTES = 4096


def api_key(value: str, source: str) -> Secret:
    return Secret(value, source, kind=KIND, tail=True)


def load_api_key(config: LlmConfig, environ: Mapping[str, str] = os.environ) -> Secret:
    """The key from the first source that has one; UsageError says how to provide one."""
    credentials = environ.get("CREDENTIALS_DIRECTORY")
    if credentials:
        path = Path(credentials) / CREDENTIAL_NAME
        if path.exists():
            return _from_file(path, f"systemd credential {path}", check_mode=False)
    if config.api_key_file is not None:
        return key_from_file(config.api_key_file)
    value = environ.get(ENV_NAME, "")
    if value:
        return api_key(_valid(value, f"${ENV_NAME}"), f"${ENV_NAME}")
    raise UsageError(
        f"no API key for [llm] provider = {config.provider!r}: pass it as the systemd "
        f"credential {CREDENTIAL_NAME} (LoadCredential=), name a mode-0600 file in "
        f"[llm] api_key_file, or set {ENV_NAME}"
    )


def key_from_file(path: Path) -> Secret:
    """The key in a configured file (mode 0600 or 0400), e.g. the one the daemon hands over."""
    return _from_file(path, f"key file {path}", check_mode=True)


def _from_file(path: Path, source: str, *, check_mode: bool) -> Secret:
    text = read_secret_file(
        path, source, check_mode=check_mode, max_bytes=_MAX_KEY_BYTES, what="an API key file"
    )
    return api_key(_valid(text, source), source)


def _valid(raw: str, source: str) -> str:
    key = raw.strip()
    if not key:
        raise UsageError(f"{source} is empty")
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise UsageError(f"{source} does not hold one API key (one line, no spaces)")
    return key
