"""The /proc readers: a live process, a zombie, a gone PID, and the parent-death signal."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from lexi_maint import procfs


def test_state_letter_survives_a_name_with_parentheses() -> None:
    assert procfs.state_from_stat("42 (a) Z (b) S 1 42 42") == "S"
    assert procfs.state_from_stat("") == ""


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
