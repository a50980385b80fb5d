"""Finding a job's documents on disk and fingerprinting them (filesystem adapter).

Know before you touch: every file is `stat`ed first; only a regular file inside the input
directory, not sparse and within `parse.max_bytes`, is read and hashed. Anything else keeps
sha256 "" and a `problem` (a FIFO, a device, a 1 TB sparse file cost one fstat each) and the
parse stage records that same problem as the document's error.

Hashes are remembered in a fingerprint cache (`<state_dir>/inventory/<job>.json`) keyed by
device, inode, size, mtime and ctime (ctime cannot be set back by anyone but root), so a
file is hashed once until it changes. The daemon takes the inventory in its preflight,
before the service is touched; the job unit's run then only `stat`s the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config import JobConfig
from lexi_maint.errors import UsageError
from lexi_maint.pipeline.sourcefile import file_problem
from lexi_maint.run.plan import Found
from lexi_maint.state import StatePaths

log = logging.getLogger(__name__)

_BLOCK = 1 << 20
_NAMED_REFUSALS = 3


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
        try:
            found.update(input_dir.glob(pattern))
        except (OSError, ValueError, NotImplementedError) as exc:
            raise UsageError(
                f"pattern {pattern!r} under {input_dir} cannot be listed: {exc}"
            ) from None
    return sorted(found)


@dataclass(frozen=True)
class _Key:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Key:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FingerprintCache:
    """sha256 per path, valid while the file's key (device, inode, size, times) is the same."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, tuple[_Key, str]] = {}
        self._used: dict[str, tuple[_Key, str]] = {}
        self.hashed = 0  # files read in full this time
        if path is not None:
            self._load(path)

    def lookup(self, path: str, key: _Key) -> str | None:
        entry = self._entries.get(path)
        return entry[1] if entry is not None and entry[0] == key else None

    def remember(self, path: str, key: _Key, sha256: str) -> None:
        self._used[path] = (key, sha256)

    def save(self) -> None:
        """Keep what this inventory saw (files gone since are forgotten); best effort."""
        if self.path is None:
            return
        data = {p: [*vars(k).values(), sha] for p, (k, sha) in self._used.items()}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".inventory-")  # mode 0600
        except OSError as exc:
            log.warning("cannot save the fingerprint cache %s: %s", self.path, exc)
            return
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot save the fingerprint cache %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _load(self, path: Path) -> None:
        try:
            raw = json.loads(path.read_text())
            self._entries = {p: (_Key(*v[:5]), str(v[5])) for p, v in raw.items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError, IndexError) as exc:
            log.warning("fingerprint cache %s unreadable (%s); hashing every file", path, exc)
            self._entries = {}


def take_inventory(
    files: Sequence[Path], input_root: Path, max_bytes: int, cache: FingerprintCache
) -> list[Found]:
    """Fingerprint `files`; save the cache."""
    found = [fingerprint(p, input_root, max_bytes, cache) for p in files]
    cache.save()
    return found


def fingerprint(
    path: Path, input_root: Path, max_bytes: int, cache: FingerprintCache | None = None
) -> Found:
    """sha256 and size of an acceptable file inside `input_root`; "" and a problem if not."""
    try:
        resolved = path.resolve(strict=True)
        if not resolved.is_relative_to(input_root.resolve()):
            return Found(str(path), "", 0, "outside the input directory")
        st = resolved.stat()  # no open yet: a FIFO or a device is judged by its mode
        problem = file_problem(st.st_mode, st.st_size, max_bytes, st.st_blocks)
        if problem is not None:
            return Found(str(path), "", st.st_size, problem.message)
        key = _Key.of(st)
        sha = cache.lookup(str(path), key) if cache is not None else None
        if sha is None:
            sha = _hash(resolved, max_bytes)
            if cache is not None:
                cache.hashed += 1
        if cache is not None:
            cache.remember(str(path), key, sha)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python 3.11
        return Found(str(path), "", 0, f"cannot read: {exc}")
    return Found(str(path), sha, st.st_size)


def _hash(path: Path, max_bytes: int) -> str:
    """Hash an open regular file, reading at most `max_bytes` + 1 bytes (it may have grown)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path} is no longer a regular file")
        digest = hashlib.sha256()
        left = max_bytes + 1
        while left > 0 and (block := handle.read(min(_BLOCK, left))):
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def inventory_summary(job: JobConfig, state_dir: Path | None) -> str:
    """Take the job's inventory (filling the fingerprint cache) and describe it in a line."""
    started = time.monotonic()
    files = discover(job.input, job.patterns)
    cache = FingerprintCache(StatePaths(state_dir).inventory(job.name) if state_dir else None)
    found = take_inventory(files, job.input, job.parse.max_bytes, cache)
    text = (
        f"{len(found)} files match {', '.join(job.patterns)}; {cache.hashed} hashed in"
        f" {time.monotonic() - started:.1f} s"
    )
    refused = [f for f in found if f.problem]
    if refused:
        named = "; ".join(f"{Path(f.path).name}: {f.problem}" for f in refused[:_NAMED_REFUSALS])
        more = f" and {len(refused) - _NAMED_REFUSALS} more" if len(refused) > 3 else ""
        text += f"; {len(refused)} will be refused ({named}{more})"
    return text
