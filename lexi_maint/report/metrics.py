"""Prometheus metrics for node_exporter's textfile collector.

A run writes `<textfile_dir>/lexi-maint-<job>.prom` when it starts, every `interval` seconds
while it goes, and when it ends; the daemon writes `lexi-maintd-<job>.prom` with the
service's downtime once it restored the service. Each write replaces the file atomically:
a temporary file in the same directory (`….prom.PID.TID`, which the collector ignores) is
renamed over the old one, so node_exporter never reads half a file; the file is 0644 whatever
the writer's umask, so node_exporter's own user can read it.

Series (labels job and run; last success: job only)::

    lexi_maint_documents{status}              gauge   done, failed, pending, unchanged,
                                                      exhausted, vanished in this run
    lexi_maint_run_start_timestamp_seconds    gauge
    lexi_maint_run_duration_seconds           gauge   so far, then final
    lexi_maint_run_running                    gauge   1 while the run goes, 0 at the end
    lexi_maint_run_exit_status                gauge   once the run ended
    lexi_maint_last_success_timestamp_seconds gauge   the last run that ended with exit 0
    lexi_maint_llm_calls_total                counter model calls answered by the API
    lexi_maint_llm_tokens_total{kind}         counter prompt, completion, reasoning, cache_hit
    lexi_maint_llm_cost_total{currency}       counter
    lexi_maint_job_peak_memory_bytes          gauge   job unit's memory.peak (foreground: max RSS)
    lexi_maint_service_downtime_seconds       gauge   (daemon) service stopped for the run

The snapshot and the families are pure; `write_textfile` and `MetricsReporter`'s ticker
thread are the side effects.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from lexi_maint.errors import UsageError
from lexi_maint.llm.usage import Usage
from lexi_maint.procfs import CGROUP_ROOT, own_cgroup
from lexi_maint.run.events import DocumentFinished, Event, RunFinished, RunStarted
from lexi_maint.systemd.properties import is_job_unit

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunSnapshot:
    """What the metrics file says about one run, at one moment."""

    job: str
    run_id: str = ""
    started_at: float = 0.0
    seconds: float = 0.0
    running: bool = False
    documents: dict[str, int] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    exit_status: int | None = None
    last_success: float | None = None
    peak_memory: int | None = None


def apply(s: RunSnapshot, event: Event, now: float) -> RunSnapshot:
    """The snapshot after `event` (pure)."""
    if isinstance(event, RunStarted):
        documents = {"done": 0, "failed": 0, "pending": event.queued, "unchanged": event.unchanged,
                     "exhausted": event.exhausted, "vanished": event.vanished}  # fmt: skip
        return replace(s, run_id=event.run_id, started_at=now, running=True, documents=documents)
    if isinstance(event, DocumentFinished):
        usage = s.usage + event.outcome.usage
        pending = event.queued - event.finished
        documents = {**s.documents, "done": event.done, "failed": event.failed, "pending": pending}
        return replace(s, documents=documents, usage=usage, seconds=now - s.started_at)
    if isinstance(event, RunFinished):
        summary = event.summary
        documents = {**s.documents, "done": summary.done, "failed": summary.failed,
                     "pending": summary.processed - summary.done - summary.failed}  # fmt: skip
        code = 128 + signal.Signals[summary.signal] if summary.signal else summary.exit_code
        last_success = now if code == 0 else s.last_success
        return replace(
            s, documents=documents, usage=summary.usage, running=False,
            seconds=summary.seconds, exit_status=code, last_success=last_success,
        )  # fmt: skip
    return s


def families(s: RunSnapshot) -> Iterator[Metric]:
    """The snapshot as Prometheus metric families (pure)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    labels, values = ["job", "run"], [s.job, s.run_id]

    documents = GaugeMetricFamily("lexi_maint_documents", "Documents of the run by status",
                                  labels=[*labels, "status"])  # fmt: skip
    for status, count in sorted(s.documents.items()):
        documents.add_metric([*values, status], count)
    yield documents
    for name, doc, value in (
        ("lexi_maint_run_start_timestamp_seconds", "When the run started", s.started_at),
        ("lexi_maint_run_duration_seconds", "How long the run has taken", s.seconds),
        ("lexi_maint_run_running", "1 while the run goes", 1.0 if s.running else 0.0),
        ("lexi_maint_run_exit_status", "The run's exit status once it ended", s.exit_status),
        ("lexi_maint_job_peak_memory_bytes", "Peak memory of the run", s.peak_memory),
    ):
        if value is not None:  # an exit status only once there is one
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            gauge.add_metric(values, value)
            yield gauge
    if s.last_success is not None:
        doc = "End of the job's last run with exit status 0"
        success = GaugeMetricFamily(
            "lexi_maint_last_success_timestamp_seconds", doc, labels=["job"]
        )
        success.add_metric([s.job], s.last_success)
        yield success
    calls = CounterMetricFamily("lexi_maint_llm_calls", "Model calls answered", labels=labels)
    calls.add_metric(values, s.usage.calls)
    yield calls
    tokens = CounterMetricFamily("lexi_maint_llm_tokens", "Model tokens by kind",
                                 labels=[*labels, "kind"])  # fmt: skip
    for kind in ("prompt", "completion", "reasoning", "cache_hit"):
        tokens.add_metric([*values, kind], getattr(s.usage, f"{kind}_tokens"))
    yield tokens
    cost = CounterMetricFamily("lexi_maint_llm_cost", "Model cost", labels=[*labels, "currency"])
    cost.add_metric([*values, s.usage.currency], s.usage.cost)
    yield cost


def downtime_families(job: str, run_id: str, seconds: float) -> Iterator[Metric]:
    from prometheus_client.core import GaugeMetricFamily

    family = GaugeMetricFamily("lexi_maint_service_downtime_seconds",
                               "How long the service was stopped for the run",
                               labels=["job", "run"])  # fmt: skip
    family.add_metric([job, run_id], seconds)
    yield family


# node_exporter runs as its own user (Debian: prometheus); the job unit's UMask=0077 and the
# daemon's 0027 would leave the file unreadable for it. The series hold no secret.
TEXTFILE_MODE = 0o644


def write_textfile(path: Path, metrics: Iterable[Metric]) -> None:
    """Replace `path` atomically with `metrics` in the text format, readable by every user.

    As `prometheus_client.write_to_textfile` does (a temporary file in the same directory,
    `….prom.PID.TID`, which the collector ignores, renamed over the old one), but with the
    file's mode set explicitly instead of left to the process's umask."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError as exc:
        raise UsageError(
            f"[metrics] textfile_dir needs prometheus_client ({exc}); "
            "install it with: pip install 'lexi-maint[metrics]'"
        ) from None
    collected = list(metrics)

    class _Fixed:
        def collect(self) -> Iterable[Metric]:
            return collected

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed())
    text = generate_latest(registry)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, TEXTFILE_MODE)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), TEXTFILE_MODE)  # open()'s mode is filtered by the umask
            file.write(text)
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def job_peak_memory(cgroup_root: Path = CGROUP_ROOT, cgroup: str | None = None) -> int:
    """The peak memory of the job unit this process runs in (memory.peak of its cgroup:
    every worker included), else the largest RSS of this process or a child: a foreground
    run shares its cgroup (a login session's scope, a shell's service) with whatever else
    runs there, whose peak is not the run's. `cgroup`: this process's (default: read)."""
    cgroup = own_cgroup() if cgroup is None else cgroup
    if cgroup is not None and is_job_unit(PurePosixPath(cgroup).name):
        with contextlib.suppress(OSError, ValueError):
            return int((cgroup_root / cgroup.lstrip("/") / "memory.peak").read_text())
    usage = max(resource.getrusage(who).ru_maxrss
                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
    return usage * 1024  # ru_maxrss is in KiB on Linux


class MetricsReporter:
    """Keeps the run's snapshot from its events and writes it: at start, every `interval`
    seconds from a ticker thread, and at the end. A failed write is logged, never raised:
    metrics must not stop a run."""

    def __init__(self, path: Path, job: str, interval: float, last_success: float | None) -> None:
        self._path = path
        self._interval = interval
        self._snapshot = RunSnapshot(job, last_success=last_success)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._warned = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._snapshot = apply(self._snapshot, event, time.time())
        if isinstance(event, RunStarted):
            self.write()
            self._ticker = threading.Thread(target=self._tick, name="metrics", daemon=True)
            self._ticker.start()
        elif isinstance(event, RunFinished):
            self.close()
            self.write()

    def close(self, exit_status: int | None = None) -> None:
        """Stop the ticker. With `exit_status`, a run that ended without its summary (an
        error on the way) is written as ended with that status."""
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            ended_early = self._snapshot.running and exit_status is not None
            if ended_early:
                seconds = time.time() - self._snapshot.started_at
                self._snapshot = replace(self._snapshot, running=False, seconds=seconds,
                                         exit_status=exit_status)  # fmt: skip
        if ended_early:
            self.write()

    def write(self) -> None:
        with self._lock:
            s = self._snapshot
            if s.running:
                s = replace(s, seconds=time.time() - s.started_at)
            s = replace(s, peak_memory=job_peak_memory())
        try:
            write_textfile(self._path, families(s))
        except (OSError, UsageError) as exc:
            if not self._warned:  # once per run, not every interval
                log.warning("metrics: cannot write %s: %s", self._path, exc)
                self._warned = True

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self.write()
