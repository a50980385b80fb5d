"""Leftover processes of a stopped service: found by cgroup, never by name alone.

`select_leftovers` is pure (what to kill, given what is running); `LeftoverKiller` is the
adapter that reads /sys/fs/cgroup and /proc (through psutil) and sends the signals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from lexi_maint.errors import ProcessError
from lexi_maint.lifecycle.config import ProcessMatcher

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    exe: str
    cmdline: str
    cwd: str


def matches(proc: ProcInfo, matcher: ProcessMatcher) -> bool:
    """Every field the matcher names must match; a matcher never matches on a name alone."""
    if matcher.exe is None and matcher.cmdline_contains is None:
        return False
    if matcher.exe is not None and proc.exe != matcher.exe:
        return False
    if matcher.cmdline_contains is not None and matcher.cmdline_contains not in proc.cmdline:
        return False
    return matcher.cwd is None or proc.cwd == matcher.cwd


def select_leftovers(
    cgroup_pids: Iterable[int],
    others: Iterable[ProcInfo],
    matchers: Sequence[ProcessMatcher],
    protected: set[int],
) -> list[int]:
    """PIDs to stop: everything in the cgroup, plus processes a matcher names.

    `protected` (this process and its ancestors) is never selected, whatever matches.
    """
    chosen = {pid for pid in cgroup_pids if pid not in protected}
    for proc in others:
        if proc.pid not in protected and any(matches(proc, m) for m in matchers):
            chosen.add(proc.pid)
    return sorted(chosen)


def cgroup_pids(cgroup: str, root: Path = CGROUP_ROOT) -> list[int]:
    """Every PID in a cgroup and its descendants (cgroup v2)."""
    if not cgroup:
        return []
    base = root / cgroup.lstrip("/")
    pids: list[int] = []
    for procs in sorted(base.rglob("cgroup.procs")) if base.is_dir() else []:
        try:
            pids.extend(int(line) for line in procs.read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def protected_pids() -> set[int]:
    """This process and its ancestors: stopping them would stop the stopper."""
    pids = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        pids.update(parent.pid for parent in psutil.Process().parents())
    return pids


def process_table() -> list[ProcInfo]:
    table = []
    for proc in psutil.process_iter(["pid", "exe", "cmdline", "cwd", "status"]):
        info = proc.info
        if info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        table.append(
            ProcInfo(
                pid=int(info["pid"]),
                exe=info.get("exe") or "",
                cmdline=" ".join(info.get("cmdline") or []),
                cwd=info.get("cwd") or "",
            )
        )
    return table


@dataclass(frozen=True)
class KillReport:
    found: tuple[int, ...]
    terminated: tuple[int, ...]  # ended after SIGTERM
    killed: tuple[int, ...]  # needed SIGKILL


class LeftoverKiller:
    """Stops leftover workers: SIGTERM, a grace period, SIGKILL, then verifies."""

    def __init__(
        self,
        matchers: Sequence[ProcessMatcher],
        grace: float,
        *,
        root: Path = CGROUP_ROOT,
        table: Callable[[], list[ProcInfo]] = process_table,
    ) -> None:
        self._matchers = matchers
        self._grace = grace
        self._root = root
        self._table = table

    def find(self, cgroup: str) -> list[int]:
        others = self._table() if self._matchers else []
        return select_leftovers(
            cgroup_pids(cgroup, self._root), others, self._matchers, protected_pids()
        )

    def stop(self, cgroup: str) -> KillReport:
        pids = self.find(cgroup)
        if not pids:
            return KillReport((), (), ())
        log.warning("stopping %d leftover processes of the service: %s", len(pids), pids)
        procs = _processes(pids)
        for proc in procs:
            _signal(proc, signal.SIGTERM)
        alive = _wait_gone(procs, self._grace)
        for proc in alive:
            _signal(proc, signal.SIGKILL)
        still = _wait_gone(alive, 5.0)
        remaining = [p.pid for p in still] + [p for p in self.find(cgroup) if p not in pids]
        if remaining:
            raise ProcessError(f"leftover processes still alive after SIGKILL: {remaining}")
        killed = {p.pid for p in alive}
        return KillReport(
            tuple(pids), tuple(p for p in pids if p not in killed), tuple(sorted(killed))
        )


def _running(proc: psutil.Process) -> bool:
    """Alive and not a zombie: a zombie holds no memory or port, only a process-table slot
    until its parent reaps it (which may never happen for a leftover)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended (or is a zombie); return those still running."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [p for p in alive if _running(p)]
    return alive


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return procs


def _signal(proc: psutil.Process, signum: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(signum)
