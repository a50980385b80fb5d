"""Running one job in the foreground: lock, ledger, graph server, plan, runner."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config import Config, JobConfig
from lexi_maint.errors import Dependency, ExitCode, LedgerError
from lexi_maint.graph.backend import GraphTarget, ServedGraph, connect, serve_probed
from lexi_maint.pipeline.registry import stage_factory
from lexi_maint.pipeline.worker import StageFactory
from lexi_maint.probe import Health, Probe
from lexi_maint.run.events import AttemptClosed, Event, RunSummary
from lexi_maint.run.inventory import FingerprintCache, discover, take_inventory
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.ledger_rows import ClosedAttempt
from lexi_maint.run.memory import MemoryProbe, read_memory
from lexi_maint.run.outage import OutageGuard, OutagePolicy
from lexi_maint.run.plan import plan
from lexi_maint.run.reconcile import graph_documents, missing_from_graph
from lexi_maint.run.runner import Runner, RunnerSettings
from lexi_maint.run.stop import StopSignal
from lexi_maint.state import StatePaths, new_run_id, state_lock

log = logging.getLogger(__name__)

_SHOWN_MISSING = 5


@dataclass(frozen=True)
class RunOptions:
    reprocess: bool = False
    workers: int | None = None  # overrides the job's `workers`
    run_id: str | None = None  # given by the daemon; otherwise made up here
    trigger: str = "foreground"  # what started the run (the daemon records its own)


def run_job(
    config: Config,
    job_name: str,
    options: RunOptions,
    on_event: Callable[[Event], None],
    *,
    probe: MemoryProbe = read_memory,
    make_stages: Callable[[JobConfig, GraphTarget], StageFactory] = stage_factory,
    stop: StopSignal | None = None,
) -> RunSummary:
    """Process one job's documents; return the summary (its exit_code says how it went)."""
    job = config.job(job_name)
    paths = StatePaths(config.state_dir)
    files = discover(job.input, job.patterns)  # before the lock: a bad input dir is a usage error
    with (
        state_lock(paths),
        Ledger.open(paths.ledger, spend_journal=job.llm.cache_path) as ledger,
        serve_probed(config.graph, paths.root) as served,
    ):
        target = served.target
        _ensure_schema(target)
        stages = make_stages(job, target)  # reads the API key: a missing one records no run
        cache = FingerprintCache(paths.inventory(job.name))
        found = take_inventory(files, job.input, job.parse.max_bytes, cache)
        run_id = options.run_id or new_run_id(job.name)
        trigger = "" if options.run_id else options.trigger
        interrupted = ledger.start_run(job.name, run_id, os.getpid(), trigger)
        report_closed(interrupted, job.max_attempts, on_event)
        _reconcile(ledger, job.name, target)
        decisions = plan(
            found,
            ledger.known(job.name),
            reprocess=options.reprocess,
            max_attempts=job.max_attempts,
        )
        ledger.apply_plan(job.name, found, decisions)
        runner = Runner(
            _settings(job, options),
            ledger,
            run_id,
            stages,
            probe,
            on_event,
            stop,
            _outage_guard(job, served, paths.root),
        )
        try:
            summary = runner.run(found, decisions, len(interrupted))
        except LedgerError as exc:  # the ledger failed under the run (disk full, damaged)
            _record_end(ledger, job, run_id, "failed", {"error": str(exc)}, exc, on_event)
            raise
        except BaseException as exc:
            _record_end(ledger, job, run_id, "cancelled", {}, exc, on_event)
            raise
        status = "stopped" if summary.stopped else "finished"
        closed = ledger.finish_run(job.name, run_id, status, summary.to_json(), summary.exit_code)
        report_closed(closed, job.max_attempts, on_event)
        return summary


def _record_end(
    ledger: Ledger,
    job: JobConfig,
    run_id: str,
    status: str,
    summary: dict[str, str],
    cause: BaseException,
    on_event: Callable[[Event], None],
) -> None:
    """Record how a run ended on an exception, as far as the ledger still lets us.

    Never masks `cause`: when the ledger refuses this write too, the row stays `running`
    in the file, and `runs`/`status` show it `interrupted` once this process is gone
    (`Ledger.runs(alive=...)`); the next run of the job marks it so for good.
    """
    exit_status = int(ExitCode.UNAVAILABLE) if isinstance(cause, LedgerError) else None
    try:
        closed = ledger.finish_run(job.name, run_id, status, summary, exit_status)
    except LedgerError as exc:
        log.warning(
            "the end of run %s could not be recorded in the ledger (%s); it reads as"
            " interrupted from now on",
            run_id,
            exc,
        )
        return
    report_closed(closed, job.max_attempts, on_event)


def report_closed(
    closed: Sequence[ClosedAttempt], max_attempts: int, on_event: Callable[[Event], None]
) -> None:
    """Each attempt the ledger closed for a runner that died gets its outcome reported
    (one journal entry per document, as if its runner had logged it)."""
    for attempt in closed:
        on_event(AttemptClosed(attempt, retry=attempt.attempts < max_attempts))


def _outage_guard(job: JobConfig, served: ServedGraph, state_dir: Path) -> OutageGuard:
    """What the runner probes when a document fails because a dependency is down."""
    probes: dict[Dependency, Probe] = {
        Dependency.GRAPH: served.health,
        Dependency.DISK: lambda: disk_space(state_dir),
    }
    if job.llm.enabled:
        from lexi_maint.llm.keys import load_api_key
        from lexi_maint.llm.reachable import api_probe

        probes[Dependency.LLM] = api_probe(job.llm, load_api_key(job.llm))
    return OutageGuard(OutagePolicy(budget=job.outage_budget), probes)


def _reconcile(ledger: Ledger, job: str, target: GraphTarget) -> None:
    """Documents done in the ledger but absent from the graph go back to pending."""
    store = connect(target)
    try:
        graph = graph_documents(store)
    finally:
        store.close()
    missing = missing_from_graph(ledger.documents(job), graph)
    if not missing:
        return
    shown = ", ".join(Path(p).name for p in missing[:_SHOWN_MISSING])
    more = f" and {len(missing) - _SHOWN_MISSING} more" if len(missing) > _SHOWN_MISSING else ""
    log.warning(
        "%d documents done in the ledger are missing from the graph (its data was lost or"
        " wiped?); they are processed again: %s%s",
        len(missing),
        shown,
        more,
    )
    ledger.requeue(job, missing, "done earlier, but missing from the graph at run start")


MIN_FREE_STATE = 16 << 20  # bytes free on state_dir's disk below which it counts as full


def disk_space(path: Path) -> Health:
    """The disk probe: enough free space where the ledger and the caches are written."""
    try:
        st = os.statvfs(path)
    except OSError as exc:
        return Health(False, f"cannot look at {path}: {exc}")
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_STATE:
        return Health(False, f"{path} has {free} bytes free")
    return Health(True)


def _ensure_schema(target: GraphTarget) -> None:
    store = connect(target)
    try:
        store.ensure_schema()
    finally:
        store.close()


def _settings(job: JobConfig, options: RunOptions) -> RunnerSettings:
    return RunnerSettings(
        job=job.name,
        input_root=job.input,
        workers=options.workers or job.workers,
        max_attempts=job.max_attempts,
        document_timeout=job.document_timeout,
        memory_watermark=job.memory_watermark,
    )
