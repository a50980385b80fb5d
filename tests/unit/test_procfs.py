"""The /proc readers: a live process, a zombie, a gone PID, and the parent-death signal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lexi_maint import procfs


def test_state_letter_survives_a_name_with_parentheses() -> None:
    assert procfs.state_from_stat("42 (a) Z (b) S 1 42 42") == "S"
    assert procfs.state_from_stat("") == ""


ROLLUP = """55d0c000-7ffd1000 ---p 00000000 00:00 0                          [rollup]
Rss:               43008 kB
Pss:               12100 kB
Shared_Clean:       3072 kB
Shared_Dirty:      29696 kB
Private_Clean:       128 kB
Private_Dirty:     10112 kB
"""


def test_shared_resident_memory_from_smaps_rollup() -> None:
    assert procfs.shared_from_rollup(ROLLUP) == (3072 + 29696) * 1024
    without_dirty = ROLLUP.replace("Shared_Dirty:      29696 kB\n", "")
    assert procfs.shared_from_rollup(without_dirty) is None  # a format it does not know
    assert procfs.shared_from_rollup("") is None


def test_this_process_shares_part_of_what_it_holds() -> None:
    shared = procfs.shared_resident()  # at least the C library's pages, mapped by others
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    assert shared is not None and 0 < shared < rss


@pytest.mark.allow_subprocess(sys.executable)
def test_alive_is_false_for_a_zombie_and_a_gone_pid() -> None:
    assert procfs.alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while procfs.alive(child.pid) and time.monotonic() < deadline:  # exits, stays a zombie
        time.sleep(0.01)
    assert not procfs.alive(child.pid)
    child.wait()
    assert not procfs.alive(child.pid)


@pytest.mark.allow_subprocess(sys.executable)
def test_a_child_whose_parent_dies_gets_the_signal() -> None:
    """The middle process sets PR_SET_PDEATHSIG in its child, then dies: the child goes."""
    script = (
        "import os, signal, sys, time\n"
        "from lexi_maint import procfs\n"
        "parent = os.getpid()\n"
        "lib = procfs.libc()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    procfs.die_with_parent(signal.SIGKILL, parent, lib)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print(pid, flush=True)\n"
        "os._exit(0)\n"
    )
    middle = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, check=True)  # fmt: skip
    grandchild = int(middle.stdout)
    deadline = time.monotonic() + 10
    while procfs.alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not procfs.alive(grandchild)  # (had it survived, it exits after 60 s)


def test_own_cgroup_reads_the_unified_line() -> None:
    cgroup = procfs.own_cgroup()
    assert cgroup is None or cgroup.startswith("/")


def test_cpu_seconds_are_user_plus_system_time() -> None:
    # fields 14 and 15 (utime 250, stime 50 ticks), the name holding ") (" as a trap
    stat = "42 (a) (b) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 1000"
    assert procfs.cpu_seconds_from_stat(stat, 100) == 3.0


def test_this_process_has_used_cpu_and_a_gone_one_none() -> None:
    used = procfs.cpu_seconds(os.getpid())
    assert used is not None and used > 0
    assert procfs.cpu_seconds(2**22 + 1) is None  # above pid_max's ceiling: no such process
