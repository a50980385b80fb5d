"""`lexi-maint run JOB`: the foreground run and the reporters it feeds (progress, sd_notify,
metrics file, pings, the daemon's event file)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from lexi_maint.config import Config
from lexi_maint.errors import ExitCode, LexiMaintError, UsageError
from lexi_maint.report.progress import AboveBar, BarReporter, LineReporter
from lexi_maint.run.events import Event
from lexi_maint.run.stop import StopSignal

if TYPE_CHECKING:
    from lexi_maint.report.metrics import MetricsReporter
    from lexi_maint.report.ping import PingReporter


def run_command(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.report.reporters import EventFile, NotifyReporter, fan_out
    from lexi_maint.run.job import RunOptions, run_job
    from lexi_maint.state import StatePaths
    from lexi_maint.systemd.notify import Notifier

    _check_job_user(config.job(args.job).limits.user)
    stop = StopSignal().install()
    options = RunOptions(reprocess=args.reprocess, workers=args.workers, run_id=args.run_id)
    reporters: list[Callable[[Event], None]] = [
        _reporter(args.progress, args.job, args.run_id, sys.stdout),
        NotifyReporter(Notifier(), args.job),
    ]
    metrics = _metrics_reporter(config, args.job)
    if metrics is not None:
        reporters.append(metrics)
    pings = None if args.run_id else _ping_reporter(config)  # the daemon pings for its runs
    if pings is not None:
        reporters.append(pings)
    event_file = None
    if args.run_id:
        config.job(args.job)  # an unknown job is a usage error before any file is made
        event_file = EventFile(StatePaths(config.state_dir).events(args.run_id), args.job)
        reporters.append(event_file)
    try:
        summary = run_job(config, args.job, options, fan_out(reporters), stop=stop)
    except (LexiMaintError, OSError) as exc:
        if metrics is not None:
            metrics.close(exit_status=ExitCode.UNAVAILABLE)  # what main() will exit with
        if pings is not None:
            pings.failed(f"job {args.job}: the run could not proceed: {exc}")
        raise
    finally:
        if event_file is not None:
            event_file.close()
        if metrics is not None:
            metrics.close()
        if pings is not None:
            pings.close()
    return summary.exit_code


def _ping_reporter(config: Config) -> PingReporter | None:
    if config.alerts.ping_url is None:
        return None
    from lexi_maint.report.ping import Pinger, PingQueue, PingReporter

    return PingReporter(PingQueue(Pinger(config.alerts)))


def _metrics_reporter(config: Config, job: str) -> MetricsReporter | None:
    """Writes the run's metrics file if [metrics] textfile_dir is set."""
    path = config.metrics.run_file(config.job(job).name)
    if path is None:
        return None
    from lexi_maint.report.metrics import MetricsReporter
    from lexi_maint.run.ledger import Ledger
    from lexi_maint.state import StatePaths

    last_success = None
    ledger_path = StatePaths(config.state_dir).ledger
    if ledger_path.exists():
        with Ledger.open(ledger_path) as ledger:
            last_success = ledger.last_success(job)
    return MetricsReporter(path, job, config.metrics.interval, last_success)


def _check_job_user(user: str | None) -> None:
    """A job's `user` applies to its unit; a foreground run must not quietly ignore a typo.
    The default job user is not a typo: a machine that runs no units may lack it."""
    from lexi_maint.config.service import DEFAULT_JOB_USER
    from lexi_maint.errors import OwnershipError
    from lexi_maint.lifecycle.ownership import resolve_owner

    if user == DEFAULT_JOB_USER:
        return
    try:
        resolve_owner(user)
    except OwnershipError as exc:
        raise UsageError(str(exc)) from None


def _reporter(mode: str, job: str, run_id: str | None, out: TextIO) -> Callable[[Event], None]:
    if mode == "journal":
        from lexi_maint.report.reporters import JournalReporter
        from lexi_maint.systemd.journal import journal_available

        if not journal_available():  # on a terminal or in a log file: start and summary too
            logging.getLogger("lexi_maint.run").setLevel(logging.INFO)
        return JournalReporter(job, run_id or "")
    if mode == "bar" or (mode == "auto" and out.isatty()):
        bar = BarReporter(out, job)
        signal.signal(signal.SIGWINCH, lambda signum, frame: bar.redraw())
        root = logging.getLogger()
        root.handlers[:] = [AboveBar(handler, bar) for handler in root.handlers]
        return bar
    return LineReporter(out)
