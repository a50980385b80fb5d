"""One document in one worker process: run the stages, time them, report one outcome.

`process_document` is the logic (no process handling); `worker_main` is what the child
process runs: it ties its life to the parent, processes one document, sends the outcome
through its pipe and exits, giving its memory back to the system.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from lexi_maint import procfs
from lexi_maint.errors import (
    Dependency,
    DocumentError,
    ErrorClass,
    GraphError,
    JobStopError,
    LexiMaintError,
    OutageError,
)
from lexi_maint.llm.usage import MetersUsage, Usage
from lexi_maint.pipeline.contract import (
    Failure,
    Outcome,
    SourceFile,
    Stage,
    Success,
    Work,
    bounded,
    bounded_warnings,
)
from lexi_maint.pipeline.stream import (
    STREAM_BYTES,
    StageClock,
    StreamedStages,
    process_streamed,
    streamed_stages,
)

log = logging.getLogger(__name__)

StageFactory = Callable[[], Sequence[Stage]]

OOM_SCORE_ADJ_MAX = 1000  # the kernel's maximum: always the first choice


def process_document(source: SourceFile, stages: Sequence[Stage]) -> Outcome:
    """Run `stages` in order over one document and say how it went (a long document a
    window at a time, when the stages can: `lexi_maint.pipeline.stream`)."""
    streamed = streamed_stages(stages) if source.size > STREAM_BYTES else None
    if streamed is not None:
        return _process_streamed(source, streamed, stages)
    work = Work(source=source)
    timings: dict[str, float] = {}
    for stage in stages:
        started = time.monotonic()
        try:
            work = stage.run(work)
        except Exception as exc:  # a bug in a stage must cost one document, not the job
            timings[stage.name] = round(time.monotonic() - started, 4)
            if not isinstance(exc, DocumentError) and not disk_full(exc):
                log.exception("stage %s crashed on %s", stage.name, source.path)
            return _failure(stage.name, exc, timings, work.warnings, _usage(stages))
        timings[stage.name] = round(time.monotonic() - started, 4)
    warnings = tuple(bounded_warnings(work.warnings))
    rss, own = peaks()
    return Success(len(work.chunks), timings, rss, warnings, _usage(stages), own)


def _process_streamed(
    source: SourceFile, streamed: StreamedStages, stages: Sequence[Stage]
) -> Outcome:
    clock = StageClock()
    try:
        result = process_streamed(source, streamed, clock)
    except Exception as exc:  # as in process_document: one document, not the job
        if not isinstance(exc, DocumentError) and not disk_full(exc):
            log.exception("stage %s crashed on %s", clock.failed, source.path)
        return _failure(clock.failed, exc, _rounded(clock.timings), (), _usage(stages))
    warnings = tuple(bounded_warnings(result.warnings))
    rss, own = peaks()
    return Success(result.chunks, _rounded(clock.timings), rss, warnings, _usage(stages), own)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {name: round(seconds, 4) for name, seconds in timings.items()}


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def _failure(
    stage: str, exc: Exception, timings: dict[str, float], warnings: tuple[str, ...], usage: Usage
) -> Failure:
    """The outcome for an exception a stage raised: whose fault it is, and whether to retry."""
    rss, own = peaks()
    warnings = tuple(bounded_warnings(warnings))  # an answer may carry megabytes of problems
    if isinstance(exc, DocumentError):
        outage = exc.dependency.value if isinstance(exc, OutageError) else ""
        return Failure(exc.error_class, bounded(exc.message), exc.retryable, timings, rss, warnings,
                       usage, isinstance(exc, JobStopError), outage, own)  # fmt: skip
    if disk_full(exc):
        message = f"{stage} stage: the disk is full: {exc}"
        return Failure(ErrorClass.INTERNAL, message, True, timings, rss, warnings, usage,
                       outage=Dependency.DISK.value, peak_own=own)  # fmt: skip
    message = bounded(f"{stage} stage crashed: {type(exc).__name__}: {exc}")
    return Failure(ErrorClass.INTERNAL, message, False, timings, rss, warnings, usage, peak_own=own)


def _usage(stages: Sequence[Stage]) -> Usage:
    """What the stages that call a paid API used, added up."""
    total = Usage()
    for stage in stages:
        if isinstance(stage, MetersUsage):
            total = total + stage.usage()
    return total


def worker_main(conn: Connection, source: SourceFile, make_stages: StageFactory) -> None:
    """Entry point of a worker process (forked by the runner)."""
    _die_with_parent()
    _prefer_as_oom_victim()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the runner's handler came with the fork
    try:
        outcome = process_document(source, make_stages())
    except Exception as exc:  # building the stages failed (e.g. graph store unreachable)
        outcome = setup_failure(source, exc)
    conn.send(outcome)
    conn.close()


def setup_failure(source: SourceFile, exc: Exception) -> Failure:
    """The outcome of a worker whose stages could not be built: a dependency that is down
    is an outage; anything but lexi-maint's own errors is a bug, whose traceback is logged
    (a missing module or a wrong name must not read as one line per document)."""
    if not isinstance(exc, LexiMaintError):
        log.error("building the stages for %s failed", source.path, exc_info=exc)
    outage = Dependency.GRAPH.value if _graph_down(exc) else ""
    return Failure(ErrorClass.INTERNAL, f"worker setup failed: {exc}", True, outage=outage)


def _graph_down(exc: Exception) -> bool:
    return isinstance(exc, GraphError) and exc.unavailable


def peaks() -> tuple[int, int | None]:
    """This worker's peak RSS and its own peak (see PEAKS in `contract`)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    shared = procfs.shared_resident()
    return rss, None if shared is None else max(0, rss - shared)


def _prefer_as_oom_victim() -> None:
    """Make this worker, not the runner or the graph server, the kernel's OOM victim.

    Under a memory cap the kernel kills the process with the most points: resident memory
    plus oom_score_adj. A freshly forked worker shares the runner's pages, so without this
    the runner itself (or FalkorDB) could be chosen, the unit would end with no document to
    blame, and the next attempt would meet the same document again. Raising one's own
    score needs no privilege.
    """
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write(str(OOM_SCORE_ADJ_MAX))
    except OSError:
        log.debug("cannot raise oom_score_adj")


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker when the runner dies (no orphans hold memory)."""
    try:
        procfs.die_with_parent(signal.SIGKILL, os.getppid(), procfs.libc())
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable")
