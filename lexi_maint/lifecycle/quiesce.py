"""What a run does to the service, decided before it is touched (the job's quiesce mode).

`decide` is pure: mode + memory plan + the service's state → stop, shrink by N, or leave it
running, or a reason to refuse the run. `plan_quiesce` gathers its inputs (adapters).

    stop    stop the service; the job runs with its configured caps and workers
    shrink  remove the plan's N workers (N may be 0); caps and workers from the plan;
            refused when the main process is not a gunicorn master or the plan does not fit
    auto    shrink when that is possible and the plan fits; else stop
    none    leave the service whole; caps and workers from a plan that removes nothing;
            refused when that plan does not fit
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from lexi_maint.config import Config, JobConfig
from lexi_maint.config.service import JobLimits, Quiesce
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.memplan.gather import (
    ServiceProbePort,
    available_memory,
    memory_plan,
    read_history,
)
from lexi_maint.lifecycle.memplan.planner import MemoryPlan, ServiceMemory
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.units import format_size


@dataclass(frozen=True)
class QuiesceDecision:
    mode: Quiesce  # what the job asked for
    action: Quiesce  # what the run does: STOP, SHRINK or NONE
    plan: MemoryPlan
    service: ServiceMemory | None
    problem: str = ""  # non-empty: the run is refused before the service is touched
    note: str = ""  # why auto chose what it chose

    @property
    def remove(self) -> int:
        return self.plan.remove if self.action is Quiesce.SHRINK else 0

    def limits(self, configured: JobLimits) -> JobLimits:
        """The job unit's caps: the plan's unless the service is stopped."""
        if self.action is Quiesce.STOP:
            return configured
        return replace(configured, memory_high=self.plan.memory_high,
                       memory_max=self.plan.memory_max)  # fmt: skip

    def workers(self, configured: int) -> int:
        return configured if self.action is Quiesce.STOP else self.plan.workers

    def describe(self) -> str:
        if self.problem:
            return f"quiesce = {self.mode}: refused: {self.problem}"
        unit = self.plan.inputs.service.unit if self.plan.inputs.service else "the service"
        what = {
            Quiesce.STOP: f"stop {unit}",
            Quiesce.SHRINK: f"shrink {unit} by {self.remove}",
            Quiesce.NONE: f"leave {unit} running",
        }[self.action]
        if self.action is Quiesce.STOP:
            caps = f" (configured caps: MemoryMax={format_size(self.plan.inputs.memory_max)})"
        else:
            caps = f" with MemoryMax={format_size(self.plan.memory_max)}"
        note = f" ({self.note})" if self.note else ""
        return f"quiesce = {self.mode}: {what}{caps}{note}"


def decide(
    mode: Quiesce, plan: MemoryPlan, beside: MemoryPlan, limits: JobLimits
) -> QuiesceDecision:
    """`plan` may remove service workers; `beside` removes none (for mode none)."""
    service = plan.inputs.service
    if plan.graph.problem:  # the graph server's unit could not hold the graph: any mode
        action = Quiesce.STOP if mode is Quiesce.AUTO else mode
        return QuiesceDecision(mode, action, plan, service, plan.graph.problem)
    if mode is Quiesce.STOP:  # without a graph unit the preflight's memory check says it
        problem = _stop_problem(plan, limits) if plan.graph.memory_max else ""
        return QuiesceDecision(mode, Quiesce.STOP, plan, service, problem)
    if mode is Quiesce.NONE:
        problem = (
            "" if beside.fits else f"the batch does not fit beside the service: {beside.problem}"
        )
        return QuiesceDecision(mode, Quiesce.NONE, beside, service, problem)
    refusal = _cannot_shrink(service, plan)
    if mode is Quiesce.SHRINK:
        return QuiesceDecision(mode, Quiesce.SHRINK, plan, service, refusal)
    if not refusal:  # auto
        return QuiesceDecision(mode, Quiesce.SHRINK, plan, service, note="the plan fits")
    stop_problem = _stop_problem(plan, limits)
    problem = stop_problem and f"neither shrinking ({refusal}) nor stopping fits: {stop_problem}"
    return QuiesceDecision(mode, Quiesce.STOP, plan, service, problem, note=refusal)


def _stop_problem(plan: MemoryPlan, limits: JobLimits) -> str:
    """Why the job's cap and the graph unit's do not fit once the service is stopped ("")."""
    service = plan.inputs.service
    wanted = limits.memory_max + plan.graph.memory_max
    if plan.inputs.available + (service.current if service else 0) >= wanted:
        return ""
    graph = ""
    if plan.graph.memory_max:
        graph = f" + graph MemoryMax {format_size(plan.graph.memory_max)}"
    return f"memory_max {format_size(limits.memory_max)}{graph} > available + the service's memory"


def _cannot_shrink(service: ServiceMemory | None, plan: MemoryPlan) -> str:
    if service is None:
        return "the service is not running: nothing to shrink"
    if not service.resizable:
        return (
            f"its main process {service.main_pid} is not a gunicorn master"
            f" ({service.master[:80]!r}); use quiesce = stop"
        )
    if not plan.fits:
        return plan.problem
    return ""


def plan_quiesce(
    config: Config,
    job: JobConfig,
    systemd: SystemdPort | None,
    probe: ServiceProbePort,
    available: Callable[[], int] = available_memory,
    *,
    reprocess: bool = False,
) -> QuiesceDecision:
    """Read the ledger, the service and the host now, plan, decide (without systemd, the
    service counts as not running)."""
    from lexi_maint.state import StatePaths

    service = None
    if systemd is not None:
        try:
            service = probe.read(systemd.status(config.service.unit))
        except LexiMaintError:
            service = None
    free = available()
    history = read_history(StatePaths(config.state_dir).ledger, config.jobs)
    plan = memory_plan(config, job, service, free, history=history, reprocess=reprocess)
    beside = plan
    if plan.remove:
        beside = memory_plan(config, job, service, free, may_shrink=False, history=history,
                             reprocess=reprocess)  # fmt: skip
    return decide(job.quiesce, plan, beside, job.limits)
