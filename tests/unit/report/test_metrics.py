"""The metrics textfile, read back with prometheus_client's own parser."""

from __future__ import annotations

import os
import stat
import time
import tomllib
from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lexi_maint.config import parse_config
from lexi_maint.errors import ErrorClass
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.report.metrics import (
    MetricsReporter,
    RunSnapshot,
    apply,
    downtime_families,
    families,
    job_peak_memory,
    write_textfile,
)
from lexi_maint.run.events import DocumentFinished, RunFinished, RunStarted, RunSummary

USAGE = Usage(calls=4, prompt_tokens=1000, completion_tokens=200, reasoning_tokens=50,
              cache_hit_tokens=300, cost=0.25, currency="USD")  # fmt: skip
STARTED = RunStarted("cao", "run-1", total=5, queued=3, unchanged=2, exhausted=0, vanished=0,
                     interrupted=0)  # fmt: skip


def finished(n: int, ok: bool) -> DocumentFinished:
    outcome = (Success(2, {}, None, usage=USAGE) if ok
               else Failure(ErrorClass.EMPTY, "zero bytes", False))  # fmt: skip
    done, failed = (n, 0) if ok else (n - 1, 1)
    return DocumentFinished(f"/in/{n}", outcome, 1, 0.1, False, done=done, failed=failed,
                            finished=n, queued=3, eta_seconds=1.0)  # fmt: skip


SUMMARY = RunSummary(
    job="cao", run_id="run-1", total=5, processed=3, done=2, failed=1, unchanged=2,
    exhausted=0, vanished=0, failed_in_ledger=1, seconds=12.5, usage=USAGE + USAGE,
)  # fmt: skip


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a textfile, parsed by Prometheus' parser."""
    parsed = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            parsed[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return parsed


def labels(**extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"job": "cao", "run": "run-1", **extra}.items()))


def test_a_run_written_at_start_and_end_parses_with_every_series(tmp_path: Path) -> None:
    path = tmp_path / "lexi-maint-cao.prom"
    s = apply(RunSnapshot("cao", last_success=1000.0), STARTED, now=5000.0)
    write_textfile(path, families(s))
    start = samples(path)
    assert start[("lexi_maint_documents", labels(status="pending"))] == 3
    assert start[("lexi_maint_documents", labels(status="unchanged"))] == 2
    assert start[("lexi_maint_run_running", labels())] == 1
    assert start[("lexi_maint_run_start_timestamp_seconds", labels())] == 5000
    assert ("lexi_maint_run_exit_status", labels()) not in start
    assert start[("lexi_maint_last_success_timestamp_seconds", (("job", "cao"),))] == 1000

    s = apply(s, finished(1, ok=True), now=5004.0)
    s = apply(s, finished(2, ok=False), now=5008.0)
    s = apply(s, RunFinished(SUMMARY), now=5012.5)
    write_textfile(path, families(s))
    end = samples(path)
    assert end[("lexi_maint_documents", labels(status="done"))] == 2
    assert end[("lexi_maint_documents", labels(status="failed"))] == 1
    assert end[("lexi_maint_documents", labels(status="pending"))] == 0
    assert end[("lexi_maint_run_running", labels())] == 0
    assert end[("lexi_maint_run_duration_seconds", labels())] == 12.5
    assert end[("lexi_maint_run_exit_status", labels())] == 1
    assert end[("lexi_maint_last_success_timestamp_seconds", (("job", "cao"),))] == 1000
    assert end[("lexi_maint_llm_calls_total", labels())] == 8
    assert end[("lexi_maint_llm_tokens_total", labels(kind="reasoning"))] == 100
    assert end[("lexi_maint_llm_cost_total", labels(currency="USD"))] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_successful_run_moves_last_success_and_a_signal_is_its_exit_status() -> None:
    s = apply(RunSnapshot("cao"), STARTED, now=1.0)
    ok = apply(s, RunFinished(replace(SUMMARY, failed=0, failed_in_ledger=0)), now=9.0)
    assert (ok.exit_status, ok.last_success) == (0, 9.0)
    interrupted = apply(s, RunFinished(replace(SUMMARY, signal="SIGINT")), now=9.0)
    assert (interrupted.exit_status, interrupted.last_success) == (130, None)


def test_the_daemon_file_holds_the_service_downtime(tmp_path: Path) -> None:
    path = tmp_path / "lexi-maintd-cao.prom"
    write_textfile(path, downtime_families("cao", "run-1", 93.5))
    assert samples(path) == {("lexi_maint_service_downtime_seconds", labels()): 93.5}


def test_the_reporter_writes_at_start_while_running_and_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "lexi-maint-cao.prom"
    reporter = MetricsReporter(path, "cao", interval=0.05, last_success=None)
    reporter(STARTED)
    first = samples(path)
    assert first[("lexi_maint_run_running", labels())] == 1
    assert first[("lexi_maint_job_peak_memory_bytes", labels())] > 0
    deadline = time.monotonic() + 10
    while (
        samples(path)[("lexi_maint_run_duration_seconds", labels())]
        == first[("lexi_maint_run_duration_seconds", labels())]
    ):  # the ticker rewrites it with the time so far
        assert time.monotonic() < deadline, "no periodic write"
        time.sleep(0.05)
    reporter(RunFinished(replace(SUMMARY, failed=0, failed_in_ledger=0)))
    end = samples(path)
    assert end[("lexi_maint_run_running", labels())] == 0
    assert end[("lexi_maint_run_exit_status", labels())] == 0


def test_a_run_that_ends_on_an_error_is_written_as_ended(tmp_path: Path) -> None:
    path = tmp_path / "lexi-maint-cao.prom"
    reporter = MetricsReporter(path, "cao", interval=60, last_success=None)
    reporter(STARTED)
    reporter.close(exit_status=3)
    end = samples(path)
    assert end[("lexi_maint_run_running", labels())] == 0
    assert end[("lexi_maint_run_exit_status", labels())] == 3


def test_the_file_is_readable_by_node_exporter_whatever_the_umask(tmp_path: Path) -> None:
    # the job unit runs with UMask=0077 and node_exporter as its own user
    path = tmp_path / "lexi-maint-cao.prom"
    old = os.umask(0o077)
    try:
        write_textfile(path, downtime_families("cao", "run-1", 1.0))
        write_textfile(path, downtime_families("cao", "run-1", 2.0))  # over an existing file
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert samples(path)[("lexi_maint_service_downtime_seconds", labels())] == 2.0
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_unwritable_directory_never_stops_the_run(tmp_path: Path) -> None:
    reporter = MetricsReporter(tmp_path / "missing" / "x.prom", "cao", 60, None)
    reporter(STARTED)
    reporter(RunFinished(SUMMARY))


def test_peak_memory_reads_the_job_units_cgroup_or_falls_back_to_max_rss(tmp_path: Path) -> None:
    assert job_peak_memory() > 0
    assert job_peak_memory(cgroup_root=tmp_path / "none") > 0  # no memory.peak: max RSS
    unit = "/lexi.slice/lexi-batch.slice/lexi-pipeline-cao_import-20261202T1200-ab12-1.service"
    session = "/user.slice/user-0.slice/session-4.scope"
    for cgroup in (unit, session):
        (tmp_path / cgroup.lstrip("/")).mkdir(parents=True)
        (tmp_path / cgroup.lstrip("/") / "memory.peak").write_text(f"{7 * 2**40}\n")
    assert job_peak_memory(tmp_path, unit) == 7 * 2**40  # every worker of the unit
    # a foreground run shares its cgroup with the session: that peak is not the run's
    assert job_peak_memory(tmp_path, session) < 7 * 2**40


def test_metrics_config() -> None:
    raw = (
        '[metrics]\ntextfile_dir = "/var/lib/node_exporter"\ninterval = 15\n'
        '[jobs.cao]\ninput = "/in"\n'
    )
    config = parse_config(tomllib.loads(raw), Path("/etc/lexi-maint/x.toml"))
    assert config.metrics.run_file("cao") == Path("/var/lib/node_exporter/lexi-maint-cao.prom")
    assert config.metrics.interval == 15
    off = parse_config(tomllib.loads('[jobs.cao]\ninput = "/in"\n'), Path("/x.toml"))
    assert off.metrics.run_file("cao") is None
