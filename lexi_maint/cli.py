"""The `lexi-maint` command line: argument parsing and output only.

Exit status: 0 all documents done or skipped; 1 some documents failed; 2 configuration or
usage error; 3 the run could not proceed (ledger or graph store unavailable);
130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from lexi_maint import __version__
from lexi_maint.config import Config, load_config, resolve_config_path
from lexi_maint.errors import ConfigError, GraphError, LedgerError, UsageError
from lexi_maint.progress import BarReporter, LineReporter

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3

log = logging.getLogger("lexi_maint")


class Terminated(BaseException):
    """SIGTERM arrived: unwind like KeyboardInterrupt so cleanup runs."""


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
        choices=("auto", "bar", "lines"),
        default="auto",
        help="live bar on a terminal, one line per document otherwise (default: auto)",
    )

    status = commands.add_parser("status", help="show a job's documents from the ledger")
    status.add_argument("job")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    config = commands.add_parser("config", help="configuration commands")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    config_commands.add_parser("check", help="validate the configuration and list every problem")

    graph = commands.add_parser("graph", help="look into the graph store")
    graph_commands = graph.add_subparsers(dest="graph_command", required=True, metavar="ACTION")
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
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
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
    except (LedgerError, GraphError) as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("lexi-maint: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("lexi-maint: terminated", file=sys.stderr)
        return 143


def _dispatch(args: argparse.Namespace) -> int:
    config_path = resolve_config_path(args.config)
    config = load_config(config_path)
    if args.command == "config":
        return _config_check(config)
    if args.command == "run":
        return _run(config, args)
    if args.command == "status":
        return _status(config, args.job, as_json=args.json, out=sys.stdout)
    return _graph(config, args)


def _config_check(config: Config) -> int:
    print(f"{config.source}: valid · state_dir {config.state_dir} · {len(config.jobs)} jobs")
    for job in config.jobs.values():
        patterns = ", ".join(job.patterns)
        print(f"  {job.name}: {job.input} [{patterns}] · {job.workers} workers")
    return EXIT_OK


def _run(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.jobrun import RunOptions, run_job

    signal.signal(signal.SIGTERM, _raise_terminated)
    options = RunOptions(reprocess=args.reprocess, workers=args.workers)
    summary = run_job(config, args.job, options, _reporter(args.progress, args.job, sys.stdout))
    return summary.exit_code


def _reporter(mode: str, job: str, out: TextIO) -> LineReporter | BarReporter:
    if mode == "bar" or (mode == "auto" and out.isatty()):
        return BarReporter(out, job)
    return LineReporter(out)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


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
    from lexi_maint.graphcli import graph_query, graph_stats

    if args.graph_command == "stats":
        print(graph_stats(config))
    else:
        print(graph_query(config, args.cypher))
    return EXIT_OK
