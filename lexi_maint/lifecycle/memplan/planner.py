"""Pure: the batch's memory need, the job unit's caps and how many service workers to remove.

    need(w)    = max(per_worker × w, largest, solo) + runner + graph server
    MemoryMax  = min(configured memory_max, need × headroom, rounded up to a MiB)
    MemoryHigh = min(configured memory_high, 7/8 of that MemoryMax)
    fits       = available + removed × service per-worker PSS ≥ MemoryMax + host reserve

The batch keeps its configured workers when removing service workers (never below
`keep_workers` serving) makes it fit; only otherwise are its workers lowered, down to 1.
"Remove 0" means the batch fits beside the whole service. Caps are sized on MemoryMax,
not on the expected use: the job may grow up to its cap without pushing the host into OOM.
"""

from __future__ import annotations

from dataclasses import dataclass

from lexi_maint.lifecycle.memplan.model import BatchEstimate
from lexi_maint.units import MiB, format_size

HIGH_FRACTION = 7 / 8


@dataclass(frozen=True)
class ServiceMemory:
    """The service as its cgroup shows it now."""

    unit: str
    main_pid: int
    master: str  # the main process's command line
    resizable: bool  # its main process is a gunicorn master (the configured match)
    workers: int  # children of the main process in the service's cgroup
    per_worker: int  # mean PSS of those workers (or memory.current / workers)
    current: int  # the cgroup's memory.current
    source: str  # "PSS" or "memory.current / workers"


@dataclass(frozen=True)
class PlanInputs:
    batch: BatchEstimate
    workers: int  # the job's configured workers
    runner: int  # the runner process
    graph_server: int  # the embedded graph server (0 for an external one)
    service: ServiceMemory | None  # None: the service is not running
    available: int  # the host's available memory (MemAvailable)
    memory_high: int  # configured caps of the job unit: never exceeded
    memory_max: int
    headroom: float
    reserve: int  # left available to the host beyond the job's cap
    keep_workers: int  # service workers that always keep serving


@dataclass(frozen=True)
class MemoryPlan:
    inputs: PlanInputs
    workers: int  # batch workers (maybe fewer than configured)
    need: int  # expected peak of the job unit with those workers
    memory_high: int  # the job unit's planned caps
    memory_max: int
    remove: int  # service workers to remove for the run
    fits: bool  # the job's cap fits once `remove` workers are gone
    problem: str  # why it does not fit ("" when it does)

    @property
    def serving(self) -> int:
        service = self.inputs.service
        return service.workers - self.remove if service else 0

    def describe(self) -> str:
        """One line for `lexi-maint plan` and `doctor`: the decision and its inputs."""
        i = self.inputs
        service = (
            f"{i.service.unit}: {i.service.workers} workers × {_size(i.service.per_worker)}"
            f" {i.service.source}"
            if i.service
            else "service not running"
        )
        fixed = i.runner + i.graph_server
        shared = (
            f"{_size(i.batch.per_worker)} per worker × {self.workers}"
            f" + {_size(fixed)} runner and graph server"
        )
        if i.batch.solo:
            shared += f"; {_size(i.batch.solo)} for a document the OOM killer met, run alone"
        batch = f"batch needs {_size(self.need)} ({i.batch.describe()}: {shared})"
        lowered = f" (lowered from {i.workers})" if self.workers < i.workers else ""
        if not self.fits:
            verdict = f"does not fit: {self.problem}"
        elif self.remove:
            verdict = f"shrink by {self.remove} worker{'s' if self.remove > 1 else ''},"
            verdict += f" {self.serving} keep serving"
        else:
            verdict = "fits beside the whole service: shrink by 0"
        return (
            f"{service}; {batch}; available {_size(i.available)} → {verdict};"
            f" job cap MemoryMax={_cap(self.memory_max)} MemoryHigh={_cap(self.memory_high)},"
            f" {self.workers} batch workers{lowered}"
        )


def need(batch: BatchEstimate, workers: int, fixed: int) -> int:
    return max(batch.per_worker * workers, batch.largest, batch.solo) + fixed


def make_plan(inputs: PlanInputs, *, may_shrink: bool = True) -> MemoryPlan:
    """The plan; `may_shrink=False` plans beside the whole service (quiesce mode none)."""
    fixed = inputs.runner + inputs.graph_server
    removable = _removable(inputs) if may_shrink else 0
    last: MemoryPlan | None = None
    for workers in range(max(1, inputs.workers), 0, -1):
        expected = need(inputs.batch, workers, fixed)
        cap = min(inputs.memory_max, _round_mib(expected * inputs.headroom))
        high = min(inputs.memory_high, _round_mib(cap * HIGH_FRACTION))
        plan = _fit(inputs, workers, expected, high, cap, removable)
        if plan.fits:
            return plan
        last = plan
    assert last is not None  # the loop runs at least once (workers >= 1)
    return last


def _fit(
    inputs: PlanInputs, workers: int, expected: int, high: int, cap: int, removable: int
) -> MemoryPlan:
    if cap < expected:
        problem = (
            f"the batch needs {_size(expected)} with {workers} workers, more than the"
            f" configured memory_max {_cap(inputs.memory_max)}"
        )
        return MemoryPlan(inputs, workers, expected, high, cap, 0, False, problem)
    wanted = cap + inputs.reserve
    per_worker = inputs.service.per_worker if inputs.service else 0
    for remove in range(removable + 1):
        if inputs.available + remove * per_worker >= wanted:
            return MemoryPlan(inputs, workers, expected, high, cap, remove, True, "")
    freed = removable * per_worker
    problem = (
        f"MemoryMax={_cap(cap)} + reserve {_size(inputs.reserve)} > available"
        f" {_size(inputs.available)} + {_size(freed)} from removing {removable} service workers"
    )
    return MemoryPlan(inputs, workers, expected, high, cap, removable, False, problem)


def _removable(inputs: PlanInputs) -> int:
    service = inputs.service
    if service is None or not service.resizable or service.per_worker <= 0:
        return 0
    return max(0, service.workers - inputs.keep_workers)


def _round_mib(value: float) -> int:
    return int(-(-value // MiB)) * MiB


def _size(value: int) -> str:
    if value >= 2**30:
        return f"{value / 2**30:.1f} GB"
    return f"{value / MiB:.0f} MB"


def _cap(value: int) -> str:
    return format_size(value) if value % MiB == 0 else f"{value // MiB}M"
