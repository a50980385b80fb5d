"""Telling an OOM victim that is still exiting from a straggler the runner must kill."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lexi_maint.procfs import already_dying, dying_from_proc

QUIET = "SigQ:\t0/63\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"


def stat_line(state: str = "S", flags: int = 4194304, name: str = "lexi-maint") -> str:
    return f"4242 ({name}) {state} 1 4242 4242 0 -1 {flags} 127 0 2 0 0 0 0 0 20 0 1 0 16 0\n"


def test_a_running_worker_is_not_dying() -> None:
    assert not dying_from_proc(stat_line(), QUIET)


def test_exiting_or_zombie_or_sigkill_pending_is_dying() -> None:
    assert dying_from_proc(stat_line(flags=4194304 | 0x4), QUIET)  # PF_EXITING
    assert dying_from_proc(stat_line(state="Z"), QUIET)
    assert dying_from_proc(stat_line(), QUIET.replace("ShdPnd:\t0000000000000000",
                                                      "ShdPnd:\t0000000000000100"))  # fmt: skip
    assert dying_from_proc(stat_line(), QUIET.replace("SigPnd:\t0000000000000000",
                                                      "SigPnd:\t0000000000000100"))  # fmt: skip


def test_a_pending_sigterm_is_not_dying_and_odd_names_parse() -> None:
    sigterm = QUIET.replace("ShdPnd:\t0000000000000000", "ShdPnd:\t0000000000004000")
    assert not dying_from_proc(stat_line(), sigterm)
    assert not dying_from_proc(stat_line(name="a) Z (b"), QUIET)  # the name cannot fool it


@pytest.mark.allow_subprocess(sys.executable)
def test_real_processes() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not already_dying(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not already_dying(child.pid)  # reaped: gone, not dying
    assert not already_dying(None) and not already_dying(os.getpid())
