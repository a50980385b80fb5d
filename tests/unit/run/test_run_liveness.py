"""A run recorded `running` whose process is gone reads `interrupted` (`runs`, `status`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lexi_maint.procfs import running_since, started_at
from lexi_maint.run.ledger import Ledger


def test_a_running_row_reads_interrupted_once_its_process_is_gone(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.sqlite3")
    ledger.start_run("j", "old", 4242)
    ledger.finish_run("j", "old", "finished", {"done": 1}, 0)
    ledger.start_run("j", "r1", 4343)
    seen: list[tuple[int, float]] = []

    def gone(pid: int, started_at: float) -> bool:
        seen.append((pid, started_at))
        return False

    assert [r.status for r in ledger.runs("j", alive=gone)] == ["interrupted", "finished"]
    assert [pid for pid, _ in seen] == [4343]  # only rows still `running` are looked at
    assert [r.status for r in ledger.runs("j", alive=lambda pid, t: True)] == [
        "running", "finished"]  # fmt: skip
    assert [r.status for r in ledger.runs("j")] == ["running", "finished"]  # the file as is
    last = ledger.last_run("j", alive=gone)
    assert last is not None and last["status"] == "interrupted"
    last = ledger.last_run("j")
    assert last is not None and last["status"] == "running"


@pytest.mark.allow_subprocess(sys.executable)
def test_running_since_knows_this_process_a_dead_one_and_a_reused_pid() -> None:
    assert running_since(os.getpid(), time.time())
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert not running_since(int(child.stdout), time.time())
    # this pid, but the run started a day before this process: someone else's pid now
    assert not running_since(os.getpid(), time.time() - 86400)
    assert not running_since(0, time.time())


def test_a_process_start_time_is_read_from_its_stat_line() -> None:
    stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 " + "0 " * 12 + "123456 0 0"
    assert started_at(stat, boot_time=1_700_000_000.0, ticks_per_second=100) == (
        1_700_000_000.0 + 1234.56
    )
