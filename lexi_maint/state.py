"""The state directory: its layout, run ids and the lock that gives one run at a time.

Everything a run keeps lives under one directory (`state_dir`, default
/var/lib/lexi-maint), laid out here and nowhere else::

    <state_dir>/
        ledger.sqlite3 (+ -wal, -shm, -journal)   per-document ledger, runs, spend folded in
        run.lock                                  flock: one run per state directory
        falkordb/                                 the embedded graph server (graph.falkorserver)
        llm/                                      response cache, call slots, in-flight keys
        runs/<run id>.jsonl                       a run's events, tailed by lexi-maintd
        inventory/<job>.json                      fingerprint cache (lexi_maint.run.inventory)

`ENTRIES` is every name lexi-maint may create at the top; lifecycle.ownership hands over
only those to the job's user.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.errors import StateError, UsageError

LEDGER = "ledger.sqlite3"
LOCK = "run.lock"
FALKORDB = "falkordb"
FALKORDB_SOCKET = "falkordb.sock"  # inside FALKORDB; its length is checked by config
# in a daemon run's job unit: the unit that runs the embedded graph server; the runner
# attaches to that server's socket instead of starting one
GRAPH_UNIT_ENV = "LEXI_MAINT_GRAPH_UNIT"
LLM = "llm"
RUNS = "runs"
INVENTORY = "inventory"
ENTRIES = frozenset(
    {
        LEDGER,
        *(f"{LEDGER}{suffix}" for suffix in ("-wal", "-shm", "-journal")),
        LOCK,
        FALKORDB,
        LLM,
        RUNS,
        INVENTORY,
    }
)


@dataclass(frozen=True)
class StatePaths:
    """Where lexi-maint keeps its state, all under one directory."""

    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / LEDGER

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def falkordb(self) -> Path:
        return self.root / FALKORDB

    @property
    def falkordb_socket(self) -> Path:
        return self.falkordb / FALKORDB_SOCKET

    @property
    def llm(self) -> Path:
        return self.root / LLM

    def events(self, run_id: str) -> Path:
        """A run's event file (lexi_maint.report.reporters writes it, the daemon tails it)."""
        return self.root / RUNS / f"{run_id}.jsonl"

    def inventory(self, job: str) -> Path:
        """The job's fingerprint cache (see lexi_maint.run.inventory)."""
        return self.root / INVENTORY / f"{job}.json"


def new_run_id(job: str) -> str:
    return f"{job}-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"


@contextmanager
def state_lock(paths: StatePaths) -> Iterator[None]:
    """One run per state directory at a time (they share the ledger and graph server)."""
    try:
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle = paths.lock.open("a+")
    except OSError as exc:
        raise StateError(
            f"state directory {paths.root} cannot be used: {exc.strerror or exc}"
            " (it must be a directory the user running lexi-maint can write)"
        ) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UsageError(
                f"another lexi-maint run holds {paths.root} (pid {holder}); wait for it to end"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
