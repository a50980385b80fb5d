"""A ledger that fails under a running run: the run's row never stays `running`.

When the ledger still takes the write, the run is recorded `failed` with the error and exit
status 3. When it does not (the disk is full), the row stays `running` in the file, and the
read commands show it `interrupted` once the run's process is gone; the next run marks it so.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

from lexi_maint.config import load_config
from lexi_maint.errors import LedgerError
from lexi_maint.run.events import DocumentFinished, Event
from lexi_maint.run.job import RunOptions, run_job
from lexi_maint.run.ledger import Ledger
from tests.integration.lexi_env import Workspace, copy_samples, workspace

pytestmark = pytest.mark.integration

JOB = "cao_import"


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as made:
        copy_samples(made.input)
        made.write_config(workers=1)
        yield made


def run_in_child(ws: Workspace, on_event: Callable[[Event], None]) -> int:
    """`run_job` in a forked process (its pid is gone afterwards); its exit code: 3 when
    it raised LedgerError, 0 when it returned."""

    def target() -> None:
        try:
            run_job(load_config(ws.config), JOB, RunOptions(run_id="r1"), on_event)
        except LedgerError:
            os._exit(3)
        os._exit(0)

    child = multiprocessing.get_context("fork").Process(target=target)
    child.start()
    child.join(300)
    assert child.exitcode is not None, "the run did not end"
    return child.exitcode


def runs_json(ws: Workspace) -> list[dict[str, object]]:
    result = ws.cli("runs", JOB, "--json")
    assert result.returncode == 0, result.stderr
    runs: list[dict[str, object]] = json.loads(result.stdout)["runs"]
    return runs


def test_a_ledger_error_mid_run_is_recorded_as_the_run_failing(ws: Workspace) -> None:
    def ledger_fails(event: Event) -> None:  # stands in for a ledger write failing here
        if isinstance(event, DocumentFinished):
            raise LedgerError("ledger /x/ledger.sqlite3: database or disk is full")

    assert run_in_child(ws, ledger_fails) == 3
    [run] = runs_json(ws)
    assert (run["run_id"], run["status"], run["exit_status"]) == ("r1", "failed", 3)
    with Ledger.open(ws.state / "ledger.sqlite3") as ledger:
        [row] = ledger.runs(JOB)
    error = "ledger /x/ledger.sqlite3: database or disk is full"
    assert row.summary == {"error": error, "units": 1}


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_ledger_on_a_disk_that_fills_mid_run_shows_the_run_interrupted(ws: Workspace) -> None:
    disk = ws.root / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], check=True)
    try:
        state = disk / "state"
        ws.config.write_text(ws.config.read_text().replace(str(ws.state), str(state)))
        filler = disk / "filler"

        def fill_the_disk(event: Event) -> None:
            if isinstance(event, DocumentFinished) and not filler.exists():
                with filler.open("wb") as handle:
                    try:
                        while True:
                            handle.write(b"\0" * (1 << 20))
                            handle.flush()
                    except OSError:
                        pass  # full

        assert run_in_child(ws, fill_the_disk) == 3  # the next ledger write found no room
        filler.unlink()
        with Ledger.open(state / "ledger.sqlite3") as ledger:
            assert [r.status for r in ledger.runs(JOB)] == ["running"]  # as the file has it
        [run] = runs_json(ws)
        assert (run["run_id"], run["status"]) == ("r1", "interrupted")  # its process is gone
        status = json.loads(ws.cli("status", JOB, "--json").stdout)
        assert status["last_run"]["status"] == "interrupted"
        again = ws.cli("run", JOB)
        assert again.returncode == 0, again.stdout + again.stderr
        with Ledger.open(state / "ledger.sqlite3") as ledger:
            statuses = {r.run_id: r.status for r in ledger.runs(JOB)}
        assert statuses["r1"] == "interrupted"  # recorded for good by the next run
        assert set(statuses.values()) == {"interrupted", "finished"}
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
