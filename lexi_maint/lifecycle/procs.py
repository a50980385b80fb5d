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

from lexi_maint.config.service import ProcessMatcher
from lexi_maint.errors import ProcessError
from lexi_maint.printable import printable
from lexi_maint.procfs import CGROUP_ROOT

log = logging.getLogger(__name__)

MAX_ROUNDS = 5  # looks for leftovers that appeared while the previous ones were stopped
RESCAN_DELAY = 0.5  # seconds between a round and the next look


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
        rescan_delay: float = RESCAN_DELAY,
    ) -> None:
        self._rescan_delay = rescan_delay
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
        """Stop the leftovers; look again and stop what appeared meanwhile, `MAX_ROUNDS`
        times at most. Something that keeps coming back is named with whoever starts it."""
        found: list[int] = []
        killed: set[int] = set()
        for round_number in range(1, MAX_ROUNDS + 1):
            if round_number > 1:
                time.sleep(self._rescan_delay)  # a respawner needs a moment to start another
            pids = [p for p in self.find(cgroup) if p not in found]
            if not pids:
                return KillReport(tuple(found), tuple(p for p in found if p not in killed),
                                  tuple(sorted(killed)))  # fmt: skip
            if round_number > 1:
                log.warning("round %d: %d more leftover processes appeared: %s", round_number,
                            len(pids), pids)  # fmt: skip
            found.extend(pids)
            killed.update(self._stop_round(pids))
        time.sleep(self._rescan_delay)
        again = self.find(cgroup)
        if not again:
            return KillReport(tuple(found), tuple(p for p in found if p not in killed),
                              tuple(sorted(killed)))  # fmt: skip
        raise ProcessError(
            f"processes of the service keep coming back after {MAX_ROUNDS} rounds of stopping"
            f" them: {'; '.join(describe_process(p) for p in again[:3])}"
        )

    def _stop_round(self, pids: list[int]) -> set[int]:
        """SIGTERM, grace, SIGKILL; return the pids that needed SIGKILL."""
        log.warning("stopping %d leftover processes of the service: %s", len(pids), pids)
        procs = _processes(pids)
        for proc in procs:
            _signal(proc, signal.SIGTERM)
        alive = _wait_gone(procs, self._grace)
        for proc in alive:
            _signal(proc, signal.SIGKILL)
        still = _wait_gone(alive, 5.0)
        if still:
            raise ProcessError(
                "leftover processes still alive after SIGKILL: "
                + "; ".join(describe_process(p.pid) for p in still)
            )
        return {p.pid for p in alive}


def describe_process(pid: int) -> str:
    """pid, user, command line and the parent that started it (the respawner, if any)."""
    try:
        proc = psutil.Process(pid)
        uid = proc.uids().real
        cmdline = " ".join(proc.cmdline()) or proc.name()
        parent = proc.parent()
        started_by = (
            f", started by pid {parent.pid} ({' '.join(parent.cmdline()) or parent.name()})"
            if parent is not None
            else ""
        )
    except psutil.Error:
        return f"pid {pid} (gone)"
    return printable(f"pid {pid} uid {uid} ({cmdline[:200]}){started_by[:300]}")


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
