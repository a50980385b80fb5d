"""The `lexi-maint` command line: argument parsing and output only.

Exit status: 0 all documents done or skipped; 1 some documents failed; 2 configuration or
usage error; 3 the run could not proceed (ledger or graph store unavailable, or the job was
stopped: API key rejected, no balance); 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from lexi_maint import __version__
from lexi_maint.config import Config, load_config, resolve_config_path
from lexi_maint.errors import (
    ConfigError,
    GraphError,
    LedgerError,
    ProcessError,
    SystemdError,
    UsageError,
)
from lexi_maint.events import Event
from lexi_maint.progress import BarReporter, LineReporter
from lexi_maint.stopsignal import Stopped, StopSignal

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

log = logging.getLogger("lexi_maint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lexi-maint",
        description="Run and watch the Lexi AI document batch with bounded memory.",
    )
    parser.add_argument("--version", action="version", version=f"lexi-maint {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $LEXI_MAINT_CONFIG, else "
        "/etc/lexi-maint/lexi-maint.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="process a job's documents in the foreground")
    run.add_argument("job", help="job name (a [jobs.NAME] table in the config)")
    run.add_argument("--reprocess", action="store_true", help="process every document again")
    run.add_argument("--workers", type=_positive, help="worker processes (overrides the config)")
    run.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "journal"),
        default="auto",
        help="live bar on a terminal, one line per document otherwise (default: auto);"
        " 'journal' logs entries with LEXI_* fields (used inside the job unit)",
    )
    run.add_argument(
        "--run-id",
        metavar="ID",
        help="run id given by the daemon (also writes STATE_DIR/runs/ID.jsonl)",
    )

    status = commands.add_parser(
        "status", help="a job's documents from the ledger; without JOB, the daemon's state"
    )
    status.add_argument("job", nargs="?")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    submit = commands.add_parser("submit", help="ask lexi-maintd to run a job")
    submit.add_argument("job")
    submit.add_argument("--reprocess", action="store_true", help="process every document again")
    submit.add_argument("--wait", action="store_true", help="follow the run; exit with its status")
    commands.add_parser("list", help="runs the daemon knows about")
    cancel = commands.add_parser("cancel", help="cancel a queued or running run")
    cancel.add_argument("run_id")
    commands.add_parser("daemon", help="run lexi-maintd (started by systemd)")
    doctor = commands.add_parser("doctor", help="check everything a run needs, with reasons")
    doctor.add_argument("job", nargs="?", help="also check this job (default: every job)")
    plan = commands.add_parser(
        "plan", help="the memory plan of a job's next run: what happens to the service, and why"
    )
    plan.add_argument("job")
    plan.add_argument("--reprocess", action="store_true", help="plan for every document again")
    commands.add_parser(
        "restore-orphaned",
        help="start the service if a dead daemon left it stopped (lexi-batch@ backstop)",
    )

    config = commands.add_parser("config", help="configuration commands")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_commands.add_parser("check", help="validate the configuration and list every problem")

    graph = commands.add_parser("graph", help="set up or look into the graph store")
    graph_commands = graph.add_subparsers(dest="graph_command", required=True, metavar="ACTION")
    graph_commands.add_parser(
        "init", help="create the missing indexes and uniqueness constraints (idempotent)"
    )
    graph_commands.add_parser("stats", help="node and relationship counts")
    query = graph_commands.add_parser(
        "query", help="run a Cypher query; prints one JSON object per row"
    )
    query.add_argument("cypher")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lexi_maint.systemd.journal import configure_logging

    configure_logging(args.verbose)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"lexi-maint: configuration invalid ({len(exc.problems)} problems):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LedgerError, GraphError, SystemdError, ProcessError) as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("lexi-maint: interrupted", file=sys.stderr)
        return 130
    except Stopped as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return 128 + exc.signum


def _dispatch(args: argparse.Namespace) -> int:
    config_path = resolve_config_path(args.config)
    if args.command == "daemon":
        from lexi_maint.daemon.main import run_daemon

        return run_daemon(config_path)
    config = load_config(config_path)
    if args.command in ("submit", "list", "cancel") or (
        args.command == "status" and args.job is None
    ):
        from lexi_maint.daemon.commands import daemon_command

        return daemon_command(config, args)
    if args.command in ("run", "status", "graph"):  # they open the ledger or graph directly
        from lexi_maint.lifecycle.ownership import become_state_owner

        become_state_owner(config.state_dir)
    handlers: dict[str, Callable[[Config, argparse.Namespace], int]] = {
        "config": lambda c, a: _config_check(c),
        "run": _run,
        "status": lambda c, a: _status(c, a.job, as_json=a.json, out=sys.stdout),
        "graph": _graph,
        "doctor": _doctor,
        "plan": _plan,
        "restore-orphaned": _restore_orphaned,
    }
    return handlers[args.command](config, args)


def _doctor(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.doctor import doctor

    return doctor(config, args.job, sys.stdout)


def _plan(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.planreport import plan_report

    return plan_report(config, args.job, sys.stdout, reprocess=args.reprocess)


def _restore_orphaned(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.daemon.backstop import restore_orphaned

    return restore_orphaned(config)


def _config_check(config: Config) -> int:
    print(f"{config.source}: valid · state_dir {config.state_dir} · {len(config.jobs)} jobs")
    for job in config.jobs.values():
        patterns = ", ".join(job.patterns)
        print(f"  {job.name}: {job.input} [{patterns}] · {job.workers} workers")
    return EXIT_OK


def _run(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.jobrun import RunOptions, run_job
    from lexi_maint.reporters import EventFile, NotifyReporter, events_path, fan_out
    from lexi_maint.systemd.notify import Notifier

    stop = StopSignal().install()
    options = RunOptions(reprocess=args.reprocess, workers=args.workers, run_id=args.run_id)
    reporters: list[Callable[[Event], None]] = [
        _reporter(args.progress, args.job, args.run_id, sys.stdout),
        NotifyReporter(Notifier(), args.job),
    ]
    event_file = None
    if args.run_id:
        config.job(args.job)  # an unknown job is a usage error before any file is made
        event_file = EventFile(events_path(config.state_dir, args.run_id))
        reporters.append(event_file)
    try:
        summary = run_job(config, args.job, options, fan_out(reporters), stop=stop)
    finally:
        if event_file is not None:
            event_file.close()
    return summary.exit_code


def _reporter(mode: str, job: str, run_id: str | None, out: TextIO) -> Callable[[Event], None]:
    if mode == "journal":
        from lexi_maint.reporters import JournalReporter

        return JournalReporter(job, run_id or "")
    if mode == "bar" or (mode == "auto" and out.isatty()):
        return BarReporter(out, job)
    return LineReporter(out)


def _status(config: Config, job_name: str, *, as_json: bool, out: TextIO) -> int:
    from lexi_maint.jobrun import StatePaths
    from lexi_maint.ledger import Ledger
    from lexi_maint.status import render_status, status_json

    job = config.job(job_name)
    with Ledger.open(StatePaths(config.state_dir).ledger) as ledger:
        records = ledger.documents(job.name)
        last_run = ledger.last_run(job.name)
    if as_json:
        json.dump(status_json(job.name, records, last_run), out, indent=2, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(render_status(job.name, records, last_run))
    return EXIT_OK


def _graph(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.graphcli import graph_init, graph_query, graph_stats

    if args.graph_command == "init":
        print(graph_init(config))
    elif args.graph_command == "stats":
        print(graph_stats(config))
    else:
        print(graph_query(config, args.cypher))
    return EXIT_OK
