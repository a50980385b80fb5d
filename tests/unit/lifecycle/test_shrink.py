"""Quiesce modes shrink, auto and none, driven through the executor with a fake systemd
whose lexi.service behaves like a gunicorn master (SIGTTOU/SIGTTIN change its workers)."""

from __future__ import annotations

import dataclasses
import errno
import re
import signal
import threading
from pathlib import Path

from lexi_maint.config import Config, parse_config
from lexi_maint.daemon.backstop import _grow_back
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.errors import ExitCode
from lexi_maint.lifecycle.executor import (
    Executor,
    RunRequest,
    RunResult,
)
from lexi_maint.lifecycle.hold import Hold, HoldStore
from lexi_maint.lifecycle.machine import Phase
from lexi_maint.lifecycle.memplan.fake import FakeServiceProbe
from lexi_maint.lifecycle.recovery import recover_until_restored
from lexi_maint.systemd.fake import FakeSystemd
from tests.unit.lifecycle.test_lifecycle import Killer, Listener, ok_checks

SERVICE = "lexi.service"
JOB_UNIT = "lexi-pipeline-run1-1.service"
GRAPH_UNIT = "lexi-graph-run1.service"
MiB = 2**20
TTOU = f"kill_main {signal.SIGTTOU.name}"
TTIN = f"kill_main {signal.SIGTTIN.name}"
# no history: 4 workers × 256 MiB (default) + runner 96 = 1120 MiB expected, (+ 4 × 4 bytes
# per byte of a.txt) × 1.25 = MemoryMax 1401 MiB; the graph server in its own unit: (64 MiB
# graph serve + 32 MiB + 1 chunk of 4096 bytes (the 10 bytes of a.txt)) × 1.25 = MemoryMax
# 121 MiB; + 256 MiB reserve: 1778 MiB wanted
AVAILABLE = 1380 * MiB  # → 2 service workers of 200 MiB PSS must go


def make_config(tmp_path: Path, quiesce: str = "shrink", **service: object) -> Config:
    (tmp_path / "docs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "docs" / "a.txt").write_text("Artikel 1\n")
    raw = {
        "state_dir": str(tmp_path / "state"),
        "service": {"unit": SERVICE, "resize_timeout": 0.2, **service},
        "daemon": {"poll_interval": 0.001},
        "jobs": {"j": {"input": "docs", "workers": 4, "quiesce": quiesce}},
    }
    return parse_config(raw, tmp_path / "lexi.toml")


class World:
    """A fake systemd with a 4-worker gunicorn, its probe, and an executor over them."""

    def __init__(
        self,
        tmp_path: Path,
        quiesce: str = "shrink",
        available: int = AVAILABLE,
        systemd: FakeSystemd | None = None,
        **service: object,
    ) -> None:
        self.systemd = systemd or FakeSystemd()
        self.systemd.add_service(SERVICE, workers=4)
        self.probe = FakeServiceProbe(self.systemd)
        self.config = make_config(tmp_path, quiesce, **service)
        self.listener = Listener()
        self.holds = HoldStore(tmp_path / "records")
        self.executor = Executor(
            self.config, self.systemd, Killer(), self.holds, self.listener,
            heartbeat=self.listener.heartbeat, health=lambda u, t: "HTTP 200", checks=ok_checks,
            prepare_state=lambda c, j: "state ready", probe=self.probe,
            available=lambda: available,
        )  # fmt: skip

    def run(self, cancel: threading.Event | None = None) -> RunResult:
        return self.executor.execute(RunRequest("run1", "j"), cancel or threading.Event())

    def verbs(self) -> list[tuple[str, str]]:
        return [c for c in self.systemd.calls if c[0] != "status"]

    def caps(self) -> dict[str, object]:
        props = self.systemd.properties[JOB_UNIT]
        return {p.name: p.value for p in props if p.name in ("MemoryMax", "MemoryHigh")}


def workers_of(systemd: FakeSystemd, unit: str) -> str:
    text = " ".join(f"{p.name}={p.value!r}" for p in systemd.properties[unit])
    match = re.search(r"'--workers', '(\d+)'", text)
    assert match is not None
    return match.group(1)


def test_shrink_removes_the_planned_workers_runs_and_grows_back(tmp_path: Path) -> None:
    world = World(tmp_path)
    seen: list[int] = []
    world.systemd.on_poll.append(lambda s, name: seen.append(s.workers[SERVICE]))
    result = world.run()
    assert (result.phase, result.exit_code) == (Phase.DONE, ExitCode.OK), result.message
    assert world.verbs() == [
        (TTOU, SERVICE),
        (TTOU, SERVICE),
        ("start_transient", GRAPH_UNIT),
        ("start_transient", JOB_UNIT),
        ("reset_failed", JOB_UNIT),
        ("unref", JOB_UNIT),
        ("stop", GRAPH_UNIT),
        ("reset_failed", GRAPH_UNIT),
        (TTIN, SERVICE),
        (TTIN, SERVICE),
        ("start", SERVICE),  # a no-op on a running unit: it only starts one that died
    ]
    assert set(seen) == {2}  # two workers kept serving during the whole run
    assert world.systemd.workers[SERVICE] == 4
    assert world.systemd.units[SERVICE].main_pid == 100  # never restarted
    assert world.caps() == {"MemoryMax": 1401 * MiB, "MemoryHigh": 1226 * MiB}
    assert world.holds.load() is None
    phases = dict(world.listener.phases)
    assert phases[Phase.QUIESCE] == f"shrinking {SERVICE} by 2 workers"


def test_the_hold_record_says_how_many_from_which_master(tmp_path: Path) -> None:
    world = World(tmp_path)
    holds: list[str] = []

    def look(s: FakeSystemd, name: str) -> None:
        hold = world.holds.load()
        assert hold is not None
        holds.append(hold.describe())

    world.systemd.on_poll.append(look)
    world.run()
    assert set(holds) == {"shrunk by 2 from MainPID 100"}


def test_failed_documents_oom_and_cancel_all_grow_back(tmp_path: Path) -> None:
    failed = World(tmp_path / "a")
    failed.systemd.pipeline_results = [("exit-code", 1)]
    assert failed.run().exit_code == ExitCode.FAILED
    oom = World(tmp_path / "b")
    oom.systemd.pipeline_results = [("oom-kill", 0), ("success", 0)]
    result = oom.run()
    assert result.exit_code == ExitCode.OK and result.unit_results == ("oom-kill", "success")
    cancelled = World(tmp_path / "c")
    cancel = threading.Event()
    cancelled.systemd.on_poll.append(lambda s, n: cancel.set())
    assert cancelled.run(cancel).exit_code == ExitCode.CANCELLED
    for world in (failed, oom, cancelled):
        assert world.systemd.workers[SERVICE] == 4
        assert [v for v, _ in world.verbs()].count(TTIN) == 2
        assert world.holds.load() is None
        assert ("stop", SERVICE) not in world.systemd.calls


def test_oom_restart_keeps_the_planned_caps_with_half_the_workers(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.systemd.pipeline_results = [("oom-kill", 0), ("success", 0)]
    world.run()
    second = {p.name: p.value for p in world.systemd.properties["lexi-pipeline-run1-2.service"]}
    assert second["MemoryMax"] == 1401 * MiB
    assert workers_of(world.systemd, "lexi-pipeline-run1-2.service") == "2"


def test_a_master_that_does_not_shrink_is_grown_back_and_the_run_refused(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.systemd.deaf.add(SERVICE)
    result = world.run()
    assert (result.phase, result.exit_code) == (Phase.FAILED, ExitCode.CONFIG)
    assert "did not shrink" in result.message and "timed out after 0.2 s" in result.message
    assert "grown back" in result.message
    verbs = [v for v, _ in world.verbs()]
    assert "start_transient" not in verbs
    assert verbs.count(TTOU) == 2 and verbs.count(TTIN) == 2  # the signals sent are undone
    assert world.holds.load() is None


def test_a_master_that_does_not_grow_back_fails_the_run_and_keeps_the_hold(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    world.systemd.on_poll.append(lambda s, name: s.deaf.add(SERVICE))
    result = world.run()
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "grow back to 4 workers" in result.message
    hold = world.holds.load()
    assert hold is not None and hold.shrunk_by == 0  # the signals went out: never sent twice


def test_a_restarted_master_is_not_grown(tmp_path: Path) -> None:
    world = World(tmp_path)

    def restart(s: FakeSystemd, name: str) -> None:
        if s.units[SERVICE].main_pid == 100:
            s.stop_unit(SERVICE, 1)
            s.start_unit(SERVICE, 1)

    world.systemd.on_poll.append(restart)
    result = world.run()
    assert result.exit_code == ExitCode.OK, result.message
    assert TTIN not in [v for v, _ in world.verbs()]
    assert world.systemd.workers[SERVICE] == 4  # its configured workers


def test_daemon_killed_mid_run_recovery_grows_back(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.systemd.workers[SERVICE] = 2  # the dead daemon had removed two
    world.systemd.add_service("lexi-pipeline-run1-1.service")  # its job unit still runs
    world.holds.record("run1", "j", SERVICE, mode="shrink", main_pid=100, workers=4)
    hold = world.holds.load()
    assert hold is not None
    world.holds.save(dataclasses.replace(hold, shrunk_by=2))
    restored = recover_until_restored(
        world.config, world.systemd, world.executor, world.holds, lambda: None,
        threading.Event(),
    )  # fmt: skip
    calls = world.verbs()
    assert calls.index(("stop", JOB_UNIT)) < calls.index((TTIN, SERVICE))
    assert world.systemd.workers[SERVICE] == 4
    assert world.holds.load() is None
    assert restored is not None and restored.run_id == "run1"
    runs = RunQueue()
    runs.add_interrupted(restored)
    record = runs.get("run1")
    assert record is not None and record.phase is Phase.INTERRUPTED


def test_backstop_grows_back_once_and_leaves_the_rest_to_the_daemon(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.systemd.workers[SERVICE] = 3
    hold = world.holds.record("run1", "j", SERVICE, mode="shrink", main_pid=100, workers=4)
    shrunk = world.holds.save(dataclasses.replace(hold, shrunk_by=1))
    _grow_back(world.config, world.systemd, world.holds, shrunk)
    assert world.systemd.workers[SERVICE] == 4
    after = world.holds.load()
    assert after is not None and after.shrunk_by == 0
    world.executor.restore("run1")  # the daemon's recovery: nothing left to grow
    assert world.systemd.workers[SERVICE] == 4


def test_backstop_does_not_grow_what_it_cannot_record(tmp_path: Path) -> None:
    """A hold record the backstop cannot update (a read-only records_dir under its unit's
    ProtectSystem=strict) would let the daemon grow the service a second time: no grow."""
    world = World(tmp_path)
    world.systemd.workers[SERVICE] = 3
    hold = world.holds.record("run1", "j", SERVICE, mode="shrink", main_pid=100, workers=4)
    shrunk = world.holds.save(dataclasses.replace(hold, shrunk_by=1))

    class ReadOnly(HoldStore):
        def save(self, hold: Hold) -> Hold:
            raise OSError(errno.EROFS, "Read-only file system")

    _grow_back(world.config, world.systemd, ReadOnly(world.holds.path.parent), shrunk)
    assert world.systemd.workers[SERVICE] == 3
    assert world.holds.load() == shrunk


def test_shrink_refuses_a_main_process_that_is_not_gunicorn(tmp_path: Path) -> None:
    world = World(tmp_path)
    world.probe.resizable = False
    result = world.run()
    assert result.exit_code == ExitCode.CONFIG
    assert "is not a gunicorn master" in result.message
    assert world.verbs() == []


def test_shrink_refuses_a_plan_that_does_not_fit(tmp_path: Path) -> None:
    world = World(tmp_path, available=100 * MiB, keep_workers=3)
    result = world.run()
    assert result.exit_code == ExitCode.CONFIG and "does not fit" in result.message
    assert world.verbs() == []


def test_auto_shrinks_when_it_fits_and_stops_otherwise(tmp_path: Path) -> None:
    shrinks = World(tmp_path / "a", quiesce="auto")
    assert shrinks.run().exit_code == ExitCode.OK
    assert ("stop", SERVICE) not in shrinks.systemd.calls
    assert [v for v, _ in shrinks.verbs()].count(TTOU) == 2
    stops = World(tmp_path / "b", quiesce="auto", available=8 * 2**30)
    stops.probe.resizable = False
    assert stops.run().exit_code == ExitCode.OK
    assert stops.verbs()[0] == ("stop", SERVICE)
    assert stops.caps() == {"MemoryMax": 4 * 2**30, "MemoryHigh": 3 * 2**30}  # configured


def test_none_runs_beside_the_service_or_refuses(tmp_path: Path) -> None:
    beside = World(tmp_path / "a", quiesce="none", available=4 * 2**30)
    assert beside.run().exit_code == ExitCode.OK
    assert [v for v, _ in beside.verbs()] == ["start_transient", "start_transient",
        "reset_failed", "unref", "stop", "reset_failed", "start"]  # fmt: skip
    assert beside.caps() == {"MemoryMax": 1401 * MiB, "MemoryHigh": 1226 * MiB}
    # 1380 MiB available: the plan lowers the batch to 2 workers to fit beside all four
    lowered = World(tmp_path / "b", quiesce="none")
    assert lowered.run().exit_code == ExitCode.OK
    assert workers_of(lowered.systemd, JOB_UNIT) == "2"
    refused = World(tmp_path / "c", quiesce="none", available=500 * MiB)
    result = refused.run()
    assert result.exit_code == ExitCode.CONFIG
    assert "does not fit beside the service" in result.message


def test_after_a_reboot_a_repeated_main_pid_is_not_grown(tmp_path: Path) -> None:
    world = World(tmp_path)  # after the reboot the new master happens to have PID 100 again
    hold = world.holds.record("run1", "j", SERVICE, mode="shrink", main_pid=100, workers=4)
    world.holds.save(dataclasses.replace(hold, shrunk_by=2, boot_id="an-earlier-boot"))
    recover_until_restored(
        world.config, world.systemd, world.executor, world.holds, lambda: None,
        threading.Event(),
    )  # fmt: skip
    assert TTIN not in [v for v, _ in world.verbs()]
    assert world.systemd.workers[SERVICE] == 4 and world.holds.load() is None
    earlier = dataclasses.replace(hold, shrunk_by=2, boot_id="an-earlier-boot")
    _grow_back(world.config, world.systemd, world.holds, earlier)  # the backstop, too
    assert TTIN not in [v for v, _ in world.verbs()]


class ReplacedOnShrink(FakeSystemd):
    """The master ignores SIGTTOU, and the service is restarted meanwhile (new MainPID)."""

    def kill_main(self, name: str, signum: int) -> None:
        super().kill_main(name, signum)
        if signum == signal.SIGTTOU:
            self.stop_unit(name, 1)
            self.start_unit(name, 1)


def test_a_master_replaced_while_shrinking_refuses_the_run_and_is_not_grown(
    tmp_path: Path,
) -> None:
    world = World(tmp_path, systemd=ReplacedOnShrink())
    world.systemd.deaf.add(SERVICE)
    result = world.run()
    assert result.exit_code == ExitCode.CONFIG and "MainPID changed" in result.message
    assert "start_transient" not in [v for v, _ in world.verbs()]
    assert TTIN not in [v for v, _ in world.verbs()]  # a new master has its own count
    assert world.holds.load() is None
