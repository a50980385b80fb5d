"""The kernel's view of processes and cgroups: the one module that reads /proc and knows
where the cgroup v2 tree is mounted.

- `alive`/`already_dying`: whether a PID still runs (a zombie does not), or is on its way
  out (exiting, or a SIGKILL pending that someone else sent);
- `running_since`: whether the process that recorded a run (pid, start time) still runs;
- `cpu_seconds`: the CPU time a process has used (a silent server that uses none is hung);
- `die_with_parent`: PR_SET_PDEATHSIG, so a child never outlives the process that runs it;
- `own_cgroup`: this process's cgroup v2 path ("/system.slice/x.service");
- `shared_resident`: how much of this process's resident memory other processes also map
  (/proc/self/smaps_rollup), so a forked worker can tell its own memory from the runner's.

The parsing is pure (`state_from_stat`, `dying_from_proc`, `shared_from_rollup`), tested
without /proc.
"""

from __future__ import annotations

import ctypes
import os
import signal
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")

_PR_SET_PDEATHSIG = 1  # include/uapi/linux/prctl.h
_PF_EXITING = 0x4  # include/linux/sched.h
_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)


_GONE = ("Z", "X", "x")  # zombie, dead


def _stat_fields(stat_text: str) -> list[str]:
    """The fields of /proc/PID/stat after the name (which may hold spaces and parentheses)."""
    return stat_text.rsplit(")", 1)[-1].split()


def state_from_stat(stat_text: str) -> str:
    """Pure: the state letter of /proc/PID/stat."""
    fields = _stat_fields(stat_text)
    return fields[0] if fields else ""


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    return state_from_stat(stat_text) not in _GONE


def started_at(stat_text: str, boot_time: float, ticks_per_second: int) -> float:
    """Pure: when the process of /proc/PID/stat started (seconds since the epoch)."""
    fields = stat_text.rsplit(")", 1)[-1].split()
    return boot_time + int(fields[19]) / ticks_per_second  # field 22, starttime in ticks


def cpu_seconds_from_stat(stat_text: str, ticks_per_second: int) -> float:
    """Pure: the user + system CPU time of the process of /proc/PID/stat, all its threads."""
    fields = _stat_fields(stat_text)
    return (int(fields[11]) + int(fields[12])) / ticks_per_second  # fields 14, 15: utime, stime


def cpu_seconds(pid: int) -> float | None:
    """The CPU seconds process `pid` has used so far; None once it is gone."""
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return cpu_seconds_from_stat(stat_text, os.sysconf("SC_CLK_TCK"))


def running_since(pid: int, since: float) -> bool:
    """True while process `pid` runs (not a zombie) and started no later than `since`: a
    process that started later is another one that got the same pid."""
    if pid <= 0:
        return False
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in (PROC / "stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except OSError:
        return False
    if state_from_stat(stat_text) in ("Z", "X", "x"):
        return False
    # btime is whole seconds and starttime in clock ticks: allow for the rounding
    return started_at(stat_text, boot, os.sysconf("SC_CLK_TCK")) <= since + 2.0


def already_dying(pid: int | None) -> bool:
    """Whether a process is exiting or has a SIGKILL waiting (sent by someone else)."""
    if not pid:
        return False
    try:
        stat_text = (PROC / str(pid) / "stat").read_text()
        status_text = (PROC / str(pid) / "status").read_text()
    except OSError:  # gone: it is not dying, it is dead
        return False
    return dying_from_proc(stat_text, status_text)


def dying_from_proc(stat_text: str, status_text: str) -> bool:
    """Pure: /proc/PID/stat and /proc/PID/status say the task is exiting or will be killed."""
    fields = _stat_fields(stat_text)
    if fields and fields[0] in _GONE:
        return True
    if len(fields) > 6 and int(fields[6]) & _PF_EXITING:
        return True
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        if key in ("SigPnd", "ShdPnd") and int(value.strip() or "0", 16) & _SIGKILL_BIT:
            return True
    return False


def cmdline(pid: int) -> bytes:
    """The raw NUL-separated command line (OSError when the process is gone)."""
    return (PROC / str(pid) / "cmdline").read_bytes()


def libc() -> ctypes.CDLL:
    """The C library, for prctl. Load it before fork when the child must not allocate."""
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent(signum: int, parent_pid: int, c_library: ctypes.CDLL) -> None:
    """In a freshly forked child: get `signum` when the parent (thread) dies, even by
    SIGKILL; if the parent is already gone, send it to ourselves at once."""
    c_library.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os.kill(os.getpid(), signum)


def own_cgroup() -> str | None:
    """This process's cgroup v2 path, or None without a unified hierarchy."""
    try:
        lines = (PROC / "self" / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


_SHARED_FIELDS = ("Shared_Clean:", "Shared_Dirty:")


def shared_from_rollup(rollup_text: str) -> int | None:
    """Pure: the bytes of /proc/PID/smaps_rollup's Shared_Clean + Shared_Dirty (resident
    pages another process maps too); None when either line is missing."""
    found: dict[str, int] = {}
    for line in rollup_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] in _SHARED_FIELDS and fields[1].isdigit():
            unit = 1024 if fields[2:3] == ["kB"] else 1
            found[fields[0]] = int(fields[1]) * unit
    if len(found) != len(_SHARED_FIELDS):
        return None
    return sum(found.values())


def shared_resident() -> int | None:
    """This process's resident bytes shared with other processes; None where the kernel has
    no smaps_rollup (before Linux 4.14) or /proc cannot be read."""
    try:
        text = (PROC / "self" / "smaps_rollup").read_text()
    except OSError:
        return None
    return shared_from_rollup(text)
