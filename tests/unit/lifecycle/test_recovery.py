"""Daemon start after a crash or reboot: the hold record drives the recovery."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from lexi_maint.daemon.runs import RunQueue
from lexi_maint.lifecycle.machine import Phase
from lexi_maint.lifecycle.recovery import recover_until_restored
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.plan import Found, plan
from lexi_maint.state import StatePaths
from lexi_maint.systemd.fake import FakeSystemd
from tests.unit.lifecycle.test_lifecycle import SERVICE, make_config, make_executor

STOP = threading.Event()  # never set: recover until restored


def test_a_dead_daemons_run_is_cleaned_up_and_marked_interrupted(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    systemd = FakeSystemd()
    systemd.add_service(SERVICE, state="inactive")
    systemd.add_service("lexi-pipeline-run1-2.service")  # still running, left by the dead daemon
    systemd.add_service("lexi-graph-run1.service")  # its graph server: not the daemon's child
    executor, _, holds = make_executor(tmp_path, systemd, config=config)
    holds.record("run1", "j", SERVICE)
    with Ledger.open(StatePaths(config.state_dir).ledger) as ledger:
        found = [Found("/in/a.txt", "aa", 1)]
        ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=3))
        ledger.start_run("j", "run1", 1)
        ledger.mark_running("j", "/in/a.txt", "run1")
    runs = RunQueue()

    restored = recover_until_restored(config, systemd, executor, holds, lambda: None, STOP)
    assert restored is not None
    runs.add_interrupted(restored)

    assert ("stop", "lexi-pipeline-run1-2.service") in systemd.calls
    assert systemd.calls.index(("stop", "lexi-pipeline-run1-2.service")) < systemd.calls.index(
        ("start", SERVICE))  # fmt: skip
    assert systemd.units[SERVICE].active_state == "active"
    # the graph server's unit goes after the job units that used it, before the service
    job_stop = systemd.calls.index(("stop", "lexi-pipeline-run1-2.service"))
    graph_stop = systemd.calls.index(("stop", "lexi-graph-run1.service"))
    assert job_stop < graph_stop < systemd.calls.index(("start", SERVICE))
    assert ("reset_failed", "lexi-graph-run1.service") in systemd.calls
    assert systemd.units["lexi-graph-run1.service"].active_state == "inactive"
    assert holds.load() is None
    record = runs.get("run1")
    assert record is not None and record.phase is Phase.INTERRUPTED
    assert "the daemon stopped" in record.message
    with Ledger.open(StatePaths(config.state_dir).ledger) as ledger:
        last = ledger.last_run("j")
        assert last is not None and last["status"] == "interrupted"
        assert ledger.document("j", "/in/a.txt").error_class == "interrupted"


def test_a_reboot_is_named_as_such(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    systemd = FakeSystemd()
    systemd.add_service(SERVICE, state="active")  # after a reboot the service starts as usual
    executor, _, holds = make_executor(tmp_path, systemd, config=config)
    hold = holds.record("run1", "j", SERVICE)
    holds.path.write_text(json.dumps({**hold.__dict__, "boot_id": "an-earlier-boot"}))
    runs = RunQueue()
    restored = recover_until_restored(config, systemd, executor, holds, lambda: None, STOP)
    assert restored is not None
    runs.add_interrupted(restored)
    record = runs.get("run1")
    assert record is not None and "the machine rebooted" in record.message
    assert holds.load() is None


def test_restore_failures_are_retried_until_stopped(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    systemd = FakeSystemd()
    systemd.add_service(SERVICE, state="inactive")
    systemd.fail_on = {f"start:{SERVICE}"}
    executor, _, holds = make_executor(tmp_path, systemd, config=config)
    holds.record("run1", "j", SERVICE)
    stop = threading.Event()
    beats: list[int] = []

    def beat() -> None:
        beats.append(1)
        if len(beats) > 2:
            stop.set()  # the daemon is told to stop while it waits to retry

    assert recover_until_restored(config, systemd, executor, holds, beat, stop) is None
    assert holds.load() is not None  # kept for the next start
    assert systemd.calls.count(("start", SERVICE)) == 1
