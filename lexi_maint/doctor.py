"""`lexi-maint doctor [JOB]`: every preflight check with ✓/✗ and its reason."""

from __future__ import annotations

from typing import TextIO

from lexi_maint.config import Config, JobConfig
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.preflight import Check, preflight_checks
from lexi_maint.procs import LeftoverKiller
from lexi_maint.systemd.dbus import SystemdPort


def doctor(config: Config, job_name: str | None, out: TextIO) -> int:
    jobs = [config.job(job_name)] if job_name else list(config.jobs.values())
    systemd, dbus_problem = _connect()
    print(f"✓ configuration: {config.source} ({len(config.jobs)} jobs)", file=out)
    if dbus_problem:
        print(f"✗ D-Bus access: {dbus_problem}", file=out)
    ok = dbus_problem is None
    ok &= _leftovers(config, systemd, out)
    for job in jobs:
        print(f"job {job.name}:", file=out)
        for check in preflight_checks(config, job, systemd):
            if check.name == "D-Bus access" and systemd is None:
                continue
            print(f"  {_mark(check)} {check.name}: {check.detail}", file=out)
            ok &= check.ok
        ok &= _quiesce(config, job, systemd, out)
    if systemd is not None:
        systemd.close()
    return 0 if ok else 1


def _connect() -> tuple[SystemdPort | None, str | None]:
    try:
        from lexi_maint.systemd.dbus import PystemdSystemd

        return PystemdSystemd(), None
    except LexiMaintError as exc:
        return None, str(exc)


def _leftovers(config: Config, systemd: SystemdPort | None, out: TextIO) -> bool:
    unit = config.service.unit
    cgroup = f"/system.slice/{unit}"
    state = "unknown"
    if systemd is not None:
        try:
            status = systemd.status(unit)
            cgroup = status.control_group or cgroup
            state = status.active_state
        except LexiMaintError:
            pass
    killer = LeftoverKiller(config.service.extra_matchers, config.service.kill_grace)
    pids = killer.find(cgroup)
    if state == "active":
        print(f"✓ {unit}: active with {len(pids)} processes in {cgroup}", file=out)
        return True
    if pids:
        print(f"✗ leftover workers: {unit} is {state} but {pids} still run", file=out)
        return False
    print(f"✓ leftover workers: none ({unit} is {state})", file=out)
    return True


def _quiesce(config: Config, job: JobConfig, systemd: SystemdPort | None, out: TextIO) -> bool:
    """The job's quiesce decision and its memory plan, with the inputs it rests on."""
    from lexi_maint.planreport import decide_now

    decision = decide_now(config, job, systemd)
    mark = "✗" if decision.problem else "✓"
    print(f"  {mark} quiesce: {decision.describe()}", file=out)
    print(f"    memory plan: {decision.plan.describe()}", file=out)
    return not decision.problem


def _mark(check: Check) -> str:
    return "✓" if check.ok else "✗"
