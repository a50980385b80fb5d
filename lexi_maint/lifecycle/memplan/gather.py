"""Adapters that gather the planner's inputs: ledger, input folder, service cgroup, host.

Each returns plain values for `model` and `planner`; `memory_plan` ties them together for
the executor, `doctor` and `lexi-maint plan`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from lexi_maint.config import Config, JobConfig
from lexi_maint.config.service import ServiceConfig
from lexi_maint.errors import LedgerError, UsageError
from lexi_maint.lifecycle.memplan.model import (
    DocumentSample,
    ModelSettings,
    PendingDocument,
    estimate_batch,
)
from lexi_maint.lifecycle.memplan.planner import MemoryPlan, PlanInputs, ServiceMemory, make_plan
from lexi_maint.lifecycle.procs import cgroup_pids
from lexi_maint.procfs import CGROUP_ROOT
from lexi_maint.run.inventory import discover
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import KILLED, Status
from lexi_maint.systemd.dbus import UnitStatus

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm")


class ServiceProbePort(Protocol):
    def read(self, status: UnitStatus) -> ServiceMemory | None: ...


@dataclass(frozen=True)
class History:
    samples: tuple[DocumentSample, ...]
    records: dict[str, tuple[DocumentRecord, ...]]  # per job
    chunks: int  # chunks of every done document: what the graph server holds
    chunked_bytes: int = 0  # the input size of those documents (chunks per byte)


# -- the ledger ------------------------------------------------------------------------------


def read_history(ledger_path: Path, jobs: Iterable[str]) -> History:
    """Every measured document of the configured jobs (read-only; none without a ledger)."""
    records: dict[str, tuple[DocumentRecord, ...]] = {}
    try:
        ledger = Ledger.open_readonly(ledger_path)
    except LedgerError as exc:
        log.debug("memory plan without history: %s", exc)
        return History((), {}, 0)
    try:
        for job in jobs:
            records[job] = tuple(ledger.documents(job))
    finally:
        ledger.close()
        _give_back_side_files(ledger_path)
    every = [r for rows in records.values() for r in rows]
    samples = tuple(
        DocumentSample(_kind(r.path), r.size, _peak(r), r.error_class == KILLED)
        for r in every
        if r.peak_rss is not None or r.error_class == KILLED
    )
    done = [r for r in every if r.status is Status.DONE and r.chunks]
    chunks = sum(r.chunks or 0 for r in done)
    return History(samples, records, chunks, sum(r.size for r in done))


def _peak(record: DocumentRecord) -> int | None:
    """The worker's own peak; the resident peak (shared pages counted) for documents done
    before lexi-maint measured it, or where smaps_rollup could not be read."""
    return record.peak_own if record.peak_own is not None else record.peak_rss


def _give_back_side_files(ledger_path: Path) -> None:
    """Root reading a WAL ledger may create its -wal/-shm files: they belong to the ledger's
    owner (the job user), or that user's next run could not write the ledger."""
    if os.geteuid() != 0:
        return
    with contextlib.suppress(OSError):
        owner = ledger_path.stat()
        for suffix in SIDE_FILES:
            side = ledger_path.with_name(ledger_path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                st = side.stat()
                if (st.st_uid, st.st_gid) != (owner.st_uid, owner.st_gid):
                    os.chown(side, owner.st_uid, owner.st_gid)


def _kind(path: str) -> str:
    return Path(path).suffix.lower()


# -- the input folder ------------------------------------------------------------------------


def pending_documents(
    job: JobConfig, known: Iterable[DocumentRecord], *, reprocess: bool = False
) -> list[PendingDocument]:
    """The documents the next run will process, by size (no hashing: a document done with
    the same size counts as unchanged, one failed max_attempts times as left alone)."""
    by_path = {r.path: r for r in known}
    pending = []
    try:
        paths = discover(job.input, job.patterns)
    except UsageError:
        return []
    for path in paths:
        try:
            size = path.stat().st_size
        except OSError:
            continue
        record = by_path.get(str(path))
        if record is not None and record.size == size and not reprocess:
            if record.status is Status.DONE:
                continue
            if record.status is Status.FAILED and record.attempts >= job.max_attempts:
                continue
        killed = record is not None and record.error_class == KILLED
        pending.append(PendingDocument(path.suffix.lower(), size, killed))
    return pending


# -- the service -----------------------------------------------------------------------------


class ServiceProbe:
    """The service's main process and its workers, from its cgroup and /proc (psutil)."""

    def __init__(self, config: ServiceConfig, root: Path = CGROUP_ROOT) -> None:
        self._config = config
        self._root = root

    def read(self, status: UnitStatus) -> ServiceMemory | None:
        if status.active_state != "active" or not status.main_pid or not status.control_group:
            return None
        in_cgroup = set(cgroup_pids(status.control_group, self._root))
        try:
            master = psutil.Process(status.main_pid)
            cmdline = " ".join(master.cmdline())
            workers = [c for c in master.children() if c.pid in in_cgroup]
        except psutil.Error:
            return None
        current = self._current(status.control_group)
        per_worker, source = _pss(workers), "PSS"
        if per_worker is None:
            per_worker = current // len(workers) if workers else 0
            source = "memory.current / workers"
        return ServiceMemory(
            unit=status.name,
            main_pid=status.main_pid,
            master=cmdline,
            resizable=self._config.master_match in cmdline,
            workers=len(workers),
            per_worker=per_worker,
            current=current,
            source=source,
        )

    def _current(self, cgroup: str) -> int:
        try:
            return int((self._root / cgroup.lstrip("/") / "memory.current").read_text())
        except (OSError, ValueError):
            return 0


def _pss(workers: list[psutil.Process]) -> int | None:
    """Mean PSS of the workers (smaps_rollup); None when any cannot be read."""
    if not workers:
        return None
    total = 0
    for worker in workers:
        try:
            total += worker.memory_full_info().pss
        except psutil.Error:
            return None
    return total // len(workers)


def available_memory() -> int:
    return int(psutil.virtual_memory().available)


# -- the plan --------------------------------------------------------------------------------


def memory_plan(
    config: Config,
    job: JobConfig,
    service: ServiceMemory | None,
    available: int,
    *,
    may_shrink: bool = True,
    history: History | None = None,
    reprocess: bool = False,
) -> MemoryPlan:
    """The plan for `job` now, from the ledger and the given service and host readings."""
    from lexi_maint.state import StatePaths

    if history is None:
        history = read_history(StatePaths(config.state_dir).ledger, config.jobs)
    planner = config.planner
    settings = ModelSettings(
        default_peak=planner.default_document_peak,
        default_factor=planner.default_bytes_factor,
        ceiling=planner.document_ceiling,
    )
    pending = pending_documents(job, history.records.get(job.name, ()), reprocess=reprocess)
    graph, chunks = 0, 0
    apart = config.graph.backend == "falkordb"  # embedded: the daemon runs it in its own unit
    if apart:
        chunks = history.chunks + added_chunks(pending, history, planner.graph_bytes_per_chunk)
        graph = planner.graph_base + planner.graph_per_chunk * chunks
    # a document the OOM killer met gets the whole configured cap, beside the runner
    oom_peak = max(job.limits.memory_max - planner.runner, 0)
    batch = estimate_batch(pending, history.samples, settings, oom_peak)
    inputs = PlanInputs(
        batch=batch,
        workers=job.workers,
        runner=planner.runner,
        graph_server=graph,
        service=service,
        available=available,
        memory_high=job.limits.memory_high,
        memory_max=job.limits.memory_max,
        headroom=planner.headroom,
        reserve=planner.host_reserve,
        keep_workers=config.service.keep_workers,
        graph_apart=apart,
        graph_memory_max=planner.graph_memory_max,
        graph_chunks=chunks,
        graph_supervisor=planner.graph_supervisor if apart else 0,
    )
    return make_plan(inputs, may_shrink=may_shrink)


def added_chunks(pending: Iterable[PendingDocument], history: History, bytes_per_chunk: int) -> int:
    """The chunks the run will add to the graph: its pending bytes at the done documents'
    chunks per byte, or one chunk per `bytes_per_chunk` with none done yet."""
    size = sum(doc.size for doc in pending)
    if history.chunks and history.chunked_bytes:
        return -(-size * history.chunks // history.chunked_bytes)
    return -(-size // bytes_per_chunk)
