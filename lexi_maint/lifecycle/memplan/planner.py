"""Pure: the batch's memory need, the job unit's caps and how many service workers to remove.

    need(w)    = max(per_worker × w, largest, solo) + runner (+ graph server, when it runs
                 inside the job unit)
    MemoryMax  = min(configured memory_max, need × headroom, rounded up to a MiB)
    MemoryHigh = min(configured memory_high, 7/8 of that MemoryMax)
    graph unit = min(graph_memory_max, (graph server + graph serve) × headroom); MemoryHigh
                 7/8 of it
    fits       = available + removed × service per-worker PSS
                 ≥ MemoryMax + graph unit's MemoryMax + host reserve

The embedded graph server of a daemon run runs in its own unit (`graph_apart`), with its
own caps; the job unit's then cover the runner and the workers alone.

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
    graph_apart: bool = False  # the graph server runs in its own unit, not the job unit
    graph_memory_max: int = 0  # that unit's MemoryMax, at most
    graph_chunks: int = 0  # the chunks the graph server's size was planned for
    graph_supervisor: int = 0  # the graph unit's own process beside the server

    @property
    def graph_unit(self) -> int:
        """The graph unit's expected peak: the server and the process that runs it."""
        return self.graph_server + self.graph_supervisor


@dataclass(frozen=True)
class GraphCaps:
    """The graph unit's caps (both 0 when the graph server is not apart)."""

    memory_high: int = 0
    memory_max: int = 0
    problem: str = ""  # the graph alone does not fit under graph_memory_max


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
    graph: GraphCaps = GraphCaps()

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
        shared = f"{_size(i.batch.per_worker)} per worker × {self.workers}"
        if i.graph_apart:
            shared += f" + {_size(i.runner)} runner"
        else:
            shared += f" + {_size(i.runner + i.graph_server)} runner and graph server"
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
            f" {self.workers} batch workers{lowered}{self._graph()}"
        )

    def _graph(self) -> str:
        i = self.inputs
        if not i.graph_apart:
            return ""
        return (
            f"; graph server (its own unit): {i.graph_chunks} chunks → {_size(i.graph_server)}"
            f" + {_size(i.graph_supervisor)} graph serve,"
            f" cap MemoryMax={_cap(self.graph.memory_max)}"
            f" MemoryHigh={_cap(self.graph.memory_high)}"
            f" (graph_memory_max {_cap(i.graph_memory_max)})"
        )


def need(batch: BatchEstimate, workers: int, fixed: int) -> int:
    return max(batch.per_worker * workers, batch.largest, batch.solo) + fixed


def make_plan(inputs: PlanInputs, *, may_shrink: bool = True) -> MemoryPlan:
    """The plan; `may_shrink=False` plans beside the whole service (quiesce mode none)."""
    fixed = inputs.runner + (0 if inputs.graph_apart else inputs.graph_server)
    graph = graph_caps(inputs)
    removable = _removable(inputs) if may_shrink else 0
    last: MemoryPlan | None = None
    for workers in range(max(1, inputs.workers), 0, -1):
        expected = need(inputs.batch, workers, fixed)
        cap = min(inputs.memory_max, _round_mib(expected * inputs.headroom))
        high = min(inputs.memory_high, _round_mib(cap * HIGH_FRACTION))
        plan = _fit(inputs, workers, expected, high, cap, removable, graph)
        if plan.fits or graph.problem:  # fewer workers cannot make the graph fit
            return plan
        last = plan
    assert last is not None  # the loop runs at least once (workers >= 1)
    return last


def graph_caps(inputs: PlanInputs) -> GraphCaps:
    """The graph unit's caps: its planned size with headroom, never above graph_memory_max.

    The planned size counts the chunks the graph holds now and those this run is expected
    to add (`gather.added_chunks`, an estimate from the pending documents' sizes). A size
    over graph_memory_max is refused before the service is touched: the graph unit would
    meet its cap during the run, and a graph server OOM-killed mid-run stops every document.
    Headroom alone past the cap is not refused: the cap is then graph_memory_max itself.
    """
    if not inputs.graph_apart:
        return GraphCaps()
    cap = min(inputs.graph_memory_max, _round_mib(inputs.graph_unit * inputs.headroom))
    problem = ""
    if inputs.graph_unit > inputs.graph_memory_max:
        problem = (
            f"the graph server's unit needs {_size(inputs.graph_unit)} for"
            f" {inputs.graph_chunks} chunks, more than graph_memory_max"
            f" {_cap(inputs.graph_memory_max)}"
        )
    return GraphCaps(_round_mib(cap * HIGH_FRACTION), cap, problem)


def _fit(
    inputs: PlanInputs,
    workers: int,
    expected: int,
    high: int,
    cap: int,
    removable: int,
    graph: GraphCaps,
) -> MemoryPlan:
    def plan(remove: int, fits: bool, problem: str) -> MemoryPlan:
        return MemoryPlan(inputs, workers, expected, high, cap, remove, fits, problem, graph)

    if graph.problem:
        return plan(0, False, graph.problem)
    if cap < expected:
        return plan(0, False, (
            f"the batch needs {_size(expected)} with {workers} workers, more than the"
            f" configured memory_max {_cap(inputs.memory_max)}"
        ))  # fmt: skip
    wanted = cap + graph.memory_max + inputs.reserve
    per_worker = inputs.service.per_worker if inputs.service else 0
    for remove in range(removable + 1):
        if inputs.available + remove * per_worker >= wanted:
            return plan(remove, True, "")
    freed = removable * per_worker
    graph_cap = f" + graph MemoryMax={_cap(graph.memory_max)}" if inputs.graph_apart else ""
    return plan(removable, False, (
        f"MemoryMax={_cap(cap)}{graph_cap} + reserve {_size(inputs.reserve)} > available"
        f" {_size(inputs.available)} + {_size(freed)} from removing {removable} service workers"
    ))  # fmt: skip


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
