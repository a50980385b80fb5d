"""The `lexi-maint` command line: argument parsing and output only.

Exit status (EXIT_CODES, shown by --help): 0 all documents done or skipped; 1 some documents
failed; 2 configuration or usage error; 3 the run could not proceed (ledger or graph store
unavailable, or the job was stopped: API key rejected, no balance); 130/143 interrupted by
SIGINT/SIGTERM; 141 standard output closed early. Errors from the errors.py tree and OS
errors are turned into one line on stderr in `_report`, the only place that maps them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lexi_maint import __version__
from lexi_maint.cli.reads import runs_command, status_command
from lexi_maint.cli.run import run_command
from lexi_maint.config import (
    CONFIG_ENV,
    Config,
    config_origin,
    load_config,
    resolve_config_path,
)
from lexi_maint.errors import ConfigError, ExitCode, LexiMaintError, UsageError
from lexi_maint.report.progress import silence
from lexi_maint.run.stop import Stopped
from lexi_maint.units import plural

log = logging.getLogger("lexi_maint")


EXIT_CODES = """\
exit status:
  0    all documents done or skipped (for other commands: success)
  1    some documents failed (doctor: a check failed)
  2    configuration or usage error (unknown job, bad argument, unknown job user,
       another run holds the state directory)
  3    the command could not proceed: state directory, ledger, graph store, systemd or
       daemon unavailable, or the job was stopped (API key rejected, no balance)
  130  interrupted by SIGINT (Ctrl-C); 143 stopped by SIGTERM
  141  standard output was closed early (e.g. piped into head); nothing is printed
       (not `run`: it carries on to its end)
"""
RUN_EXIT = """\
exit status: 0 all documents done or skipped; 1 some documents failed; 2 configuration
or usage error (unknown job or job user, another run holds the state directory); 3 the
run could not proceed (state directory, ledger or graph store unavailable, API key
rejected, no balance); 130 Ctrl-C; 143 SIGTERM (the run stops between two steps and
prints its summary). Standard output closed early (piped into head): the run carries on
to its end and exits with its own status.
"""
READ_EXIT = """\
exit status: 0 success (also when no run has stored anything yet); 2 configuration or
usage error; 3 the state directory, ledger, graph store or daemon is unavailable.
"""
DOCTOR_EXIT = """\
exit status: 0 every check passed; 1 at least one check failed (each ✗ line says why);
2 configuration invalid or unknown job.
"""
SUBMIT_EXIT = """\
exit status: without --wait, 0 once the daemon accepted the run; with --wait, the run's
own status: 0 all done, 1 some documents failed, 2 refused (unknown job, preflight
failed), 3 system error or daemon unavailable, 4 cancelled.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lexi-maint",
        description="Run and watch the Lexi AI document batch with bounded memory.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"lexi-maint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help: str,
        epilog: str = READ_EXIT,
    ) -> argparse.ArgumentParser:
        sub = group.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common_options(sub, top=False)
        return sub

    run = command(commands, "run", "process a job's documents in the foreground", RUN_EXIT)
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
    # given by the daemon to the job unit (also writes STATE_DIR/runs/ID.jsonl)
    run.add_argument("--run-id", metavar="ID", help=argparse.SUPPRESS)

    status = command(
        commands, "status", "a job's documents from the ledger; without JOB, the daemon's state"
    )
    status.add_argument("job", nargs="?", help="job name (default: ask lexi-maintd what runs)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--failed", action="store_true", help="list only the documents that failed")

    runs = command(commands, "runs", "run history from the ledger, newest first")
    runs.add_argument("job", nargs="?", help="only this job's runs (default: every job)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="show N runs (default: 20)"
    )

    submit = command(commands, "submit", "ask lexi-maintd to run a job", SUBMIT_EXIT)
    submit.add_argument("job", help="job name (a [jobs.NAME] table in the config)")
    submit.add_argument("--reprocess", action="store_true", help="process every document again")
    submit.add_argument("--wait", action="store_true", help="follow the run; exit with its status")
    list_ = command(commands, "list", "runs the daemon knows about (since it started)")
    list_.add_argument("--json", action="store_true", help="machine-readable output")
    cancel = command(commands, "cancel", "cancel a queued or running run")
    cancel.add_argument("run_id", metavar="RUN_ID", help="run id as shown by list or submit")
    command(
        commands, "daemon", "run lexi-maintd (started by systemd)",
        "exit status: 0 stopped cleanly; 2 configuration invalid; 3 could not start.\n",
    )  # fmt: skip
    doctor = command(commands, "doctor", "check everything a run needs, with reasons", DOCTOR_EXIT)
    doctor.add_argument("job", nargs="?", help="also check this job (default: every job)")
    plan = command(
        commands, "plan",
        "the memory plan of a job's next run: what happens to the service, and why",
        "exit status: 0 the run would go ahead; 1 its quiesce mode would be refused.\n",
    )  # fmt: skip
    plan.add_argument("job", help="job name (a [jobs.NAME] table in the config)")
    plan.add_argument("--reprocess", action="store_true", help="plan for every document again")
    command(
        commands, "restore-orphaned",
        "start the service if a dead daemon left it stopped (lexi-batch@ backstop)",
        "exit status: 0 nothing to do or the service was started; 3 it could not be started.\n",
    )  # fmt: skip

    notify = command(
        commands, "notify-failure",
        "report a failed lexi-batch@JOB to the [alerts] on_failure command (OnFailure= unit)",
        "exit status: the notifier's; 0 without one (the report is printed); 3 it could not"
        " run or timed out.\n",
    )  # fmt: skip
    notify.add_argument("job", help="the failed unit's job (lexi-notify@JOB.service passes %%i)")

    config = command(commands, "config", "configuration commands")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    command(
        config_commands, "check", "validate the configuration and list every problem",
        "exit status: 0 valid; 2 invalid (every problem is listed with file and key).\n",
    )  # fmt: skip

    verify = command(
        commands, "verify", "compare a job's ledger with the graph",
        "exit status: 0 they agree; 1 they differ (each difference is listed); 2 configuration"
        " or usage error; 3 the ledger or graph store is unavailable.\n",
    )  # fmt: skip
    verify.add_argument("job", help="job name (a [jobs.NAME] table in the config)")

    graph = command(commands, "graph", "set up or look into the graph store")
    graph_commands = graph.add_subparsers(dest="graph_command", required=True, metavar="ACTION")
    command(
        graph_commands, "init", "create the missing indexes and uniqueness constraints (idempotent)"
    )
    command(graph_commands, "stats", "node and relationship counts")
    query = command(
        graph_commands,
        "query",
        "run a Cypher query, read-only unless --write; one JSON object per row",
    )
    query.add_argument(
        "cypher", metavar="CYPHER", help="the query, e.g. 'MATCH (d:Document) RETURN count(d)'"
    )
    query.add_argument(
        "--write",
        action="store_true",
        help="allow the query to change the graph (refused while a run holds the state directory)",
    )
    command(
        graph_commands,
        "serve",
        "run the embedded FalkorDB server in the foreground (the graph unit of a daemon run)",
    )
    return parser


def _common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """--config and -v, accepted before or after the command: below the top their default
    is SUPPRESS, so an option absent there does not overwrite the value given earlier."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None if top else argparse.SUPPRESS,
        help="configuration file (default: $LEXI_MAINT_CONFIG, else "
        "/etc/lexi-maint/lexi-maint.toml)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="log details to stderr",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # the ledger, graph data and cached answers are nobody else's to read
    from lexi_maint.systemd.journal import configure_logging

    configure_logging(args.verbose)
    try:
        try:
            return _dispatch(args)
        finally:
            sys.stdout.flush()  # a closed pipe shows here, while the handlers below still apply
    except BrokenPipeError:
        silence(sys.stdout)
        return ExitCode.BROKEN_PIPE
    except KeyboardInterrupt:
        print("lexi-maint: interrupted", file=sys.stderr)
        return 130
    except Stopped as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except (LexiMaintError, OSError) as exc:
        return _report(exc)


def _report(exc: LexiMaintError | OSError) -> int:
    """One line (a config error: one line per problem) on stderr; the exit status.

    The errors.py tree maps here and nowhere else: configuration and usage errors are the
    caller's (2); every other lexi-maint error and any OS error (a state directory that
    cannot be written, a full disk) means the command could not proceed (3).
    """
    if isinstance(exc, ConfigError):
        count = plural(len(exc.problems), "problem")
        print(f"lexi-maint: configuration invalid ({count}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return ExitCode.CONFIG
    if isinstance(exc, OSError) and exc.filename is not None:
        print(f"lexi-maint: cannot use {exc.filename}: {exc.strerror}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    print(f"lexi-maint: {exc}", file=sys.stderr)
    return ExitCode.CONFIG if isinstance(exc, UsageError) else ExitCode.UNAVAILABLE


def _load_config(args: argparse.Namespace) -> tuple[Path, Config]:
    path = resolve_config_path(args.config)
    if not path.exists():
        origin = config_origin(args.config)
        raise UsageError(
            f"configuration file {path} not found ({origin}); name one with --config FILE"
            f" or ${CONFIG_ENV}"
        )
    return path, load_config(path)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "daemon":
        from lexi_maint.daemon.main import run_daemon

        return run_daemon(resolve_config_path(args.config))
    _, config = _load_config(args)
    if args.command == "status" and args.job is None and args.failed:
        raise UsageError(
            "status --failed needs a JOB: failed documents are in a job's ledger"
            " (lexi-maint status JOB --failed)"
        )
    if args.command in ("submit", "list", "cancel") or (
        args.command == "status" and args.job is None
    ):
        from lexi_maint.daemon.commands import daemon_command

        return daemon_command(config, args)
    if args.command in (
        "run",
        "status",
        "graph",
        "runs",
        "verify",
    ):  # they open the ledger or graph
        from lexi_maint.lifecycle.ownership import become_state_owner

        become_state_owner(config.state_dir)
    handlers: dict[str, Callable[[Config, argparse.Namespace], int]] = {
        "config": lambda c, a: _config_check(c),
        "run": run_command,
        "status": lambda c, a: status_command(
            c, a.job, as_json=a.json, failed=a.failed, out=sys.stdout
        ),
        "graph": _graph,
        "runs": runs_command,
        "verify": _verify,
        "doctor": _doctor,
        "plan": _plan,
        "restore-orphaned": _restore_orphaned,
        "notify-failure": _notify_failure,
    }
    return handlers[args.command](config, args)


def _doctor(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.cli.doctor import doctor

    return doctor(config, args.job, sys.stdout)


def _plan(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.cli.plan import plan_report

    return plan_report(config, args.job, sys.stdout, reprocess=args.reprocess)


def _notify_failure(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.report.notify import notify_failure

    return notify_failure(config, args.job, sys.stdout)


def _restore_orphaned(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.daemon.backstop import restore_orphaned

    return restore_orphaned(config)


def _config_check(config: Config) -> int:
    from lexi_maint.config import environment_problems

    problems = environment_problems(config)
    if problems:
        raise ConfigError(problems)
    jobs = plural(len(config.jobs), "job")
    print(f"{config.source}: valid · state_dir {config.state_dir} · {jobs}")
    for job in config.jobs.values():
        patterns = ", ".join(job.patterns)
        print(f"  {job.name}: {job.input} [{patterns}] · {job.workers} workers")
    return ExitCode.OK


def _verify(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.cli.graph import verify_job

    result = verify_job(config, args.job)
    if result is None:
        from lexi_maint.report.status import no_runs_yet

        sys.stdout.write(no_runs_yet(args.job, config.state_dir))
        return ExitCode.OK
    print(result.render())
    return ExitCode.OK if result.consistent else ExitCode.FAILED


def _graph(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.cli.graph import graph_init, graph_query, graph_stats, nothing_stored

    if args.graph_command == "serve":
        from lexi_maint.cli.graph import graph_serve

        return graph_serve(config)
    if args.graph_command == "init":
        print(graph_init(config))
        return ExitCode.OK
    reads = args.graph_command == "stats" or not args.write
    note = nothing_stored(config) if reads else None
    if note is not None:  # a read command creates nothing, not even an empty graph
        print(note, file=sys.stdout if args.graph_command == "stats" else sys.stderr)
    elif args.graph_command == "stats":
        print(graph_stats(config))
    else:
        print(graph_query(config, args.cypher, write=args.write))
    return ExitCode.OK
