"""`lexi-maint plan JOB`: what the next run would do to the service, and why."""

from __future__ import annotations

from typing import TextIO

from lexi_maint.config import Config, JobConfig
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.memplan.gather import ServiceProbe
from lexi_maint.lifecycle.quiesce import QuiesceDecision, plan_quiesce
from lexi_maint.systemd.dbus import SystemdPort


def plan_report(config: Config, job_name: str, out: TextIO, *, reprocess: bool = False) -> int:
    """Print the quiesce decision and the memory plan; 1 when the run would be refused."""
    job = config.job(job_name)
    systemd, problem = _connect()
    try:
        decision = decide_now(config, job, systemd, reprocess=reprocess)
    finally:
        if systemd is not None:
            systemd.close()
    if problem:
        print(f"(not connected to systemd: {problem}; planned without the service)", file=out)
    print(f"job {job.name}: {decision.describe()}", file=out)
    print(f"  {decision.plan.describe()}", file=out)
    return 1 if decision.problem else 0


def decide_now(
    config: Config, job: JobConfig, systemd: SystemdPort | None, *, reprocess: bool = False
) -> QuiesceDecision:
    return plan_quiesce(config, job, systemd, ServiceProbe(config.service), reprocess=reprocess)


def _connect() -> tuple[SystemdPort | None, str | None]:
    try:
        from lexi_maint.systemd.dbus import PystemdSystemd

        return PystemdSystemd(), None
    except LexiMaintError as exc:
        return None, str(exc)
