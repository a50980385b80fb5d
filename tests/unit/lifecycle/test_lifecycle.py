"""The lifecycle executor with a fake systemd: every failure path restores the service."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from lexi_maint.config import Config, JobConfig, parse_config
from lexi_maint.errors import ExitCode, TransitionError
from lexi_maint.lifecycle.attempts import FakeAttempts
from lexi_maint.lifecycle.executor import (
    Executor,
    RunRequest,
    RunResult,
)
from lexi_maint.lifecycle.hold import HoldStore
from lexi_maint.lifecycle.machine import Machine, Phase
from lexi_maint.lifecycle.memplan.fake import FakeServiceProbe
from lexi_maint.lifecycle.preflight import Check
from lexi_maint.lifecycle.procs import KillReport
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.systemd.fake import FakeSystemd
from lexi_maint.systemd.properties import UnitProperty

SERVICE = "lexi.service"


class Listener:
    def __init__(self) -> None:
        self.phases: list[tuple[Phase, str]] = []
        self.progressed = 0
        self.beats = 0

    def phase(self, run_id: str, phase: Phase, message: str) -> None:
        self.phases.append((phase, message))

    def progress(self, run_id: str) -> None:
        self.progressed += 1

    def heartbeat(self) -> None:  # the executor's heartbeat, passed to it on its own
        self.beats += 1


class Killer:
    def __init__(self, fail: bool = False) -> None:
        self.cgroups: list[str] = []
        self.fail = fail

    def stop(self, cgroup: str) -> KillReport:
        from lexi_maint.errors import ProcessError

        self.cgroups.append(cgroup)
        if self.fail:
            raise ProcessError("leftover processes still alive after SIGKILL: [42]")
        return KillReport((41, 42), (41,), (42,))


def make_config(tmp_path: Path, health: bool = False, restarts: int = 2) -> Config:
    (tmp_path / "docs").mkdir(exist_ok=True)
    service = {"unit": SERVICE, "health_url": "http://127.0.0.1:9/health"} if health else {}
    raw = {
        "state_dir": str(tmp_path / "state"),
        "service": service,
        "daemon": {"poll_interval": 0.001},
        "jobs": {"j": {"input": "docs", "workers": 4, "limits": {"oom_restarts": restarts}}},
    }
    return parse_config(raw, tmp_path / "lexi.toml")


def ok_checks(config: Config, job: JobConfig, systemd: SystemdPort | None) -> list[Check]:
    return [Check("memory", True, "plenty")]


def make_executor(
    tmp_path: Path,
    systemd: FakeSystemd,
    *,
    killer: Killer | None = None,
    health: Callable[[str, float], str] = lambda u, t: "HTTP 200",
    checks: Callable[[Config, JobConfig, SystemdPort], list[Check]] = ok_checks,
    config: Config | None = None,
    prepare_state: Callable[[Config, JobConfig], str] = lambda c, j: "state ready",
    attempts: FakeAttempts | None = None,
) -> tuple[Executor, Listener, HoldStore]:
    config = config or make_config(tmp_path)
    listener = Listener()
    holds = HoldStore(tmp_path / "records")
    executor = Executor(config, systemd, killer or Killer(), holds, listener,
                        heartbeat=listener.heartbeat, health=health, checks=checks,
                        prepare_state=prepare_state,
                        probe=FakeServiceProbe(systemd),
                        attempts=attempts or FakeAttempts())  # fmt: skip
    return executor, listener, holds


def exec_argv(props: dict[str, UnitProperty]) -> list[str]:
    """The argv of a job unit's ExecStart property, a(sasb): [(path, argv, ignore_failure)]."""
    value = props["ExecStart"].value
    assert isinstance(value, list) and len(value) == 1, value
    _, argv, _ = value[0]
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), argv
    return argv


def fake() -> FakeSystemd:
    systemd = FakeSystemd()
    systemd.add_service(SERVICE)
    return systemd


def run(executor: Executor, cancel: threading.Event | None = None) -> RunResult:
    return executor.execute(RunRequest("run1", "j"), cancel or threading.Event())


def test_success_stops_runs_and_restores_in_order(tmp_path: Path) -> None:
    systemd = fake()
    killer = Killer()
    executor, listener, holds = make_executor(tmp_path, systemd, killer=killer)
    result = executor.execute(RunRequest("run1", "j"), threading.Event())
    assert (result.phase, result.exit_code) == (Phase.DONE, ExitCode.OK)
    verbs = [c for c in systemd.calls if c[0] != "status"]
    assert verbs == [
        ("stop", SERVICE),
        ("start_transient", "lexi-graph-run1.service"),  # the graph server's own unit first
        ("start_transient", "lexi-pipeline-run1-1.service"),
        ("reset_failed", "lexi-pipeline-run1-1.service"),
        ("unref", "lexi-pipeline-run1-1.service"),
        ("stop", "lexi-graph-run1.service"),  # after the job unit, before the service
        ("reset_failed", "lexi-graph-run1.service"),
        ("start", SERVICE),
    ]
    assert killer.cgroups == [f"/system.slice/{SERVICE}"]
    assert [p for p, _ in listener.phases] == [
        Phase.PREFLIGHT, Phase.QUIESCE, Phase.RUN, Phase.RESTORE, Phase.DONE]  # fmt: skip
    assert listener.progressed > 0  # each poll of the job unit looks at its event file
    assert listener.beats > 0
    assert holds.load() is None
    assert systemd.units[SERVICE].active_state == "active"
    assert result.service_downtime is not None and result.service_downtime >= 0


def test_state_goes_to_the_job_user_after_the_checks_and_before_the_service_stops(
    tmp_path: Path,
) -> None:
    systemd = fake()
    order: list[str] = []

    def checks(config: Config, job: JobConfig, s: SystemdPort | None) -> list[Check]:
        order.append("checks")
        return [Check("memory", True, "plenty")]

    def prepare(config: Config, job: JobConfig) -> str:
        stops = [c for c in systemd.calls if c[0] == "stop"]
        order.append(f"state for {job.name} after {len(stops)} stops")
        return "state given"

    executor, _, _ = make_executor(tmp_path, systemd, checks=checks, prepare_state=prepare)
    assert run(executor).exit_code == ExitCode.OK
    assert order == ["checks", "state for j after 0 stops"]
    assert ("stop", SERVICE) in systemd.calls


def test_state_that_cannot_be_given_fails_preflight_with_the_service_untouched(
    tmp_path: Path,
) -> None:
    from lexi_maint.errors import OwnershipError

    systemd = fake()

    def refuse(config: Config, job: JobConfig) -> str:
        raise OwnershipError("state_dir /srv also holds etc: point state_dir at a dedicated one")

    executor, _, holds = make_executor(tmp_path, systemd, prepare_state=refuse)
    result = run(executor)
    assert result.exit_code == ExitCode.CONFIG
    assert "left untouched" in result.message and "also holds etc" in result.message
    assert [c for c in systemd.calls if c[0] != "status"] == []
    assert holds.load() is None


def test_failed_preflight_leaves_the_service_untouched(tmp_path: Path) -> None:
    systemd = fake()

    def bad(config: Config, job: JobConfig, s: SystemdPort | None) -> list[Check]:
        return [Check("memory", False, "need 4G, have 1G"), Check("input directory", True, "")]

    executor, _, holds = make_executor(tmp_path, systemd, checks=bad)
    result = run(executor)
    assert result.phase is Phase.FAILED and result.exit_code == ExitCode.CONFIG
    assert "memory: need 4G, have 1G" in result.message
    assert [c for c in systemd.calls if c[0] != "status"] == []
    assert holds.load() is None


def test_oom_kill_restarts_with_half_the_workers_then_finishes(tmp_path: Path) -> None:
    systemd = fake()
    systemd.pipeline_results = [("oom-kill", 0), ("exit-code", 1)]
    executor, _, _ = make_executor(tmp_path, systemd)
    result = run(executor)
    assert result.exit_code == ExitCode.FAILED
    assert result.unit_results == ("oom-kill", "exit-code")
    first, second = (systemd.properties[f"lexi-pipeline-run1-{n}.service"] for n in (1, 2))

    def argv(props: list[UnitProperty]) -> list[str]:
        return exec_argv({p.name: p for p in props})

    assert argv(first)[argv(first).index("--workers") + 1] == "4"
    assert argv(second)[argv(second).index("--workers") + 1] == "2"
    assert systemd.units[SERVICE].active_state == "active"


def test_each_job_unit_that_ends_has_its_open_attempts_closed(tmp_path: Path) -> None:
    """Issue 12: OOMPolicy=stop may end the unit with its runner before the runner records
    the killed attempt: the daemon, which outlives the unit, closes it (and journals it)."""
    systemd = fake()
    systemd.pipeline_results = [("oom-kill", 0), ("oom-kill", 0), ("exit-code", 1)]
    attempts = FakeAttempts()
    executor, _, _ = make_executor(tmp_path, systemd, attempts=attempts)
    run(executor)
    assert attempts.calls == [
        ("j", "run1", "lexi-pipeline-run1-1.service", "oom-kill"),
        ("j", "run1", "lexi-pipeline-run1-2.service", "oom-kill"),
        ("j", "run1", "lexi-pipeline-run1-3.service", "exit-code"),
    ]


def test_oom_restarts_are_bounded(tmp_path: Path) -> None:
    systemd = fake()
    systemd.pipeline_results = [("oom-kill", 0)] * 5
    executor, _, _ = make_executor(tmp_path, systemd, config=make_config(tmp_path, restarts=1))
    result = run(executor)
    assert result.unit_results == ("oom-kill", "oom-kill")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert systemd.units[SERVICE].active_state == "active"


def test_cancel_stops_the_job_unit_and_restores(tmp_path: Path) -> None:
    systemd = fake()
    systemd.polls_until_done = 10**6  # the unit would run forever
    executor, _, holds = make_executor(tmp_path, systemd)
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    result = run(executor, cancel)
    assert (result.phase, result.exit_code) == (Phase.CANCELLED, ExitCode.CANCELLED)
    assert ("stop", "lexi-pipeline-run1-1.service") in systemd.calls
    assert systemd.calls.index(("start", SERVICE)) > systemd.calls.index(
        ("stop", "lexi-pipeline-run1-1.service"))  # fmt: skip
    assert holds.load() is None


@pytest.mark.parametrize("failing", ["start_transient:lexi-pipeline-run1-1.service"])
def test_a_job_unit_that_cannot_start_still_restores(tmp_path: Path, failing: str) -> None:
    systemd = fake()
    systemd.fail_on = {failing}
    executor, _, holds = make_executor(tmp_path, systemd)
    result = run(executor)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "scripted" in result.message
    assert systemd.units[SERVICE].active_state == "active"
    assert holds.load() is None


def test_leftovers_that_survive_sigkill_abort_the_run_but_restore(tmp_path: Path) -> None:
    systemd = fake()
    executor, _, _ = make_executor(tmp_path, systemd, killer=Killer(fail=True))
    result = run(executor)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "still alive after SIGKILL" in result.message
    assert not any(c[0] == "start_transient" for c in systemd.calls)
    assert systemd.units[SERVICE].active_state == "active"


def test_a_failed_restore_keeps_the_hold_for_the_next_start(tmp_path: Path) -> None:
    systemd = fake()
    systemd.fail_on = {f"start:{SERVICE}"}
    executor, _, holds = make_executor(tmp_path, systemd)
    result = run(executor)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert f"restoring {SERVICE} failed" in result.message
    assert result.service_downtime is None  # still down
    hold = holds.load()
    assert hold is not None and hold.run_id == "run1"


def test_unhealthy_service_after_restart_is_reported(tmp_path: Path) -> None:
    systemd = fake()

    def unhealthy(url: str, timeout: float) -> str:
        raise TimeoutError(f"{url} not healthy within {timeout:g} s (last: HTTP 503)")

    executor, _, holds = make_executor(
        tmp_path, systemd, health=unhealthy, config=make_config(tmp_path, health=True)
    )
    result = executor.execute(RunRequest("run1", "j"), threading.Event())
    assert "HTTP 503" in result.message
    assert holds.load() is not None


def test_job_unit_properties_carry_the_caps(tmp_path: Path) -> None:
    systemd = fake()
    executor, _, _ = make_executor(tmp_path, systemd)
    run(executor)
    props = {p.name: p for p in systemd.properties["lexi-pipeline-run1-1.service"]}
    assert props["Slice"].value == "lexi-batch.slice"
    assert props["MemoryMax"].value == 4 * 2**30 and props["MemoryMax"].signature == "t"
    assert props["MemoryHigh"].value == 3 * 2**30
    assert props["MemorySwapMax"].value == 0
    assert props["OOMPolicy"].value == "stop"
    assert props["OOMScoreAdjust"].value == 500 and props["OOMScoreAdjust"].signature == "i"
    assert props["AddRef"].value is True
    argv = exec_argv(props)
    assert argv[-6:] == ["--run-id", "run1", "--workers", "4", "--progress", "journal"]


def test_machine_refuses_skipping_restore() -> None:
    machine = Machine()
    for phase in (Phase.PREFLIGHT, Phase.QUIESCE, Phase.RUN):
        machine.advance(phase)
    with pytest.raises(TransitionError):
        machine.advance(Phase.DONE)


def test_a_stopped_pipeline_is_explained(tmp_path: Path) -> None:
    systemd = fake()
    systemd.pipeline_results = [("exit-code", 3)]
    executor, _, _ = make_executor(tmp_path, systemd)
    result = run(executor)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "the LLM API refused the key" in result.message
