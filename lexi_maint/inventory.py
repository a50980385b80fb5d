"""Finding a job's documents on disk and fingerprinting them (filesystem adapter)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from lexi_maint.errors import UsageError
from lexi_maint.plan import Found

_BLOCK = 1 << 20


def discover(input_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """Every path under `input_dir` matching a pattern, sorted, each once.

    Symlinks and non-regular entries are kept: the parse stage gives each its own error,
    so the operator sees them in the ledger instead of them silently disappearing.
    """
    if not input_dir.is_dir():
        raise UsageError(f"input directory {input_dir} does not exist or is not a directory")
    if not os.access(input_dir, os.R_OK | os.X_OK):
        raise UsageError(f"input directory {input_dir} is not readable")
    found: set[Path] = set()
    for pattern in patterns:
        found.update(input_dir.glob(pattern))
    return sorted(found)


def fingerprint(path: Path, input_root: Path) -> Found:
    """sha256 and size of a regular file inside `input_root`; "" and 0 when it is not one."""
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(input_root) or not stat.S_ISREG(resolved.stat().st_mode):
            return Found(str(path), "", 0)
        digest = hashlib.sha256()
        size = 0
        with resolved.open("rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
                size += len(block)
    except OSError:
        return Found(str(path), "", 0)
    return Found(str(path), digest.hexdigest(), size)
