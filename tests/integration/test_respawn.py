"""Leftover processes that come back while they are being stopped (an extra matcher's
target respawned by something else): looked for again, and a respawner that never stops
is named in the error."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lexi_maint.config.service import ProcessMatcher
from lexi_maint.errors import ProcessError
from lexi_maint.lifecycle.procs import LeftoverKiller

pytestmark = pytest.mark.integration

RESPAWNER = """
import subprocess, sys, time
for _ in range(int(sys.argv[1])):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                              "lexi-respawned-" + "worker"])  # not in this script's own cmdline
    while child.poll() is None:
        time.sleep(0.02)
    time.sleep(0.1)
time.sleep(600)
"""


def start(tmp_path: Path, times: int) -> subprocess.Popen[bytes]:
    """The respawner in a process group of its own, its output away from pytest's: a child
    it had just started when the test kills it would otherwise live on for 600 s holding
    pytest's stdout (seen keeping a piped pytest run from ending)."""
    respawner = subprocess.Popen([sys.executable, "-c", RESPAWNER, str(times)], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)  # fmt: skip
    time.sleep(0.5)
    return respawner


def kill_all(respawner: subprocess.Popen[bytes]) -> None:
    """The respawner and whatever child it has at this moment (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(respawner.pid, signal.SIGKILL)
    respawner.wait()


MATCHER = ProcessMatcher(exe=None, cmdline_contains="lexi-respawned-worker", cwd=None)


def test_processes_that_come_back_a_few_times_are_stopped_in_later_rounds(
    tmp_path: Path,
) -> None:
    respawner = start(tmp_path, times=3)
    try:
        report = LeftoverKiller([MATCHER], grace=1.0).stop("")
        assert len(report.found) == 3
    finally:
        kill_all(respawner)


def test_a_respawner_that_never_stops_is_named(tmp_path: Path) -> None:
    respawner = start(tmp_path, times=1000)
    try:
        with pytest.raises(ProcessError) as caught:
            LeftoverKiller([MATCHER], grace=1.0).stop("")
        message = str(caught.value)
        assert "keep coming back after 5 rounds" in message
        assert f"started by pid {respawner.pid}" in message
    finally:
        kill_all(respawner)
