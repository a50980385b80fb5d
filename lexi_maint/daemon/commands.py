"""CLI commands that talk to the daemon: submit, list, cancel, status (no job)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from lexi_maint.config import Config
from lexi_maint.daemon.client import (
    Client,
    format_run,
    submit_and_wait,
    submit_trigger,
)
from lexi_maint.errors import DaemonRefused, DaemonUnavailable, ExitCode


def daemon_command(config: Config, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    client = Client(config.daemon.socket)
    try:
        return _dispatch(client, args, out)
    except DaemonRefused as exc:
        print(f"lexi-maint: lexi-maintd refused: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except DaemonUnavailable as exc:
        print(f"lexi-maint: {exc}", file=sys.stderr)
        return ExitCode.UNAVAILABLE


def list_json(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The daemon's runs with ISO 8601 times and the history's schema version."""
    from lexi_maint.report.history import SCHEMA_VERSION
    from lexi_maint.report.status import iso_time

    stamps = ("submitted_at", "started_at", "finished_at")
    return {
        "schema_version": SCHEMA_VERSION,
        "runs": [{**run, **{key: iso_time(run.get(key)) for key in stamps}} for run in runs],
    }


def _dispatch(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    def show(line: str) -> None:
        print(line, file=out, flush=True)

    if args.command == "submit":
        if not args.wait:
            reply = client.request({"op": "submit", "job": args.job, "reprocess": args.reprocess,
                                    "trigger": submit_trigger()})  # fmt: skip
            verb = "submitted" if reply.get("created") else "already queued or running:"
            show(f"{verb} {format_run(reply['run'])}")
            return ExitCode.OK
        run = submit_and_wait(client, args.job, args.reprocess, show)
        show(f"finished: {format_run(run)}")
        return int(run["exit_code"] if run["exit_code"] is not None else ExitCode.UNAVAILABLE)
    if args.command == "list":
        runs = client.request({"op": "list"})["runs"]
        if args.json:
            show(json.dumps(list_json(runs), ensure_ascii=False, indent=2))
            return ExitCode.OK
        for run in runs:
            show(format_run(run))
        if not runs:
            show("no runs since the daemon started")
        return ExitCode.OK
    if args.command == "cancel":
        reply = client.request({"op": "cancel", "run": args.run_id})
        show(f"cancel requested: {format_run(reply['run'])}")
        return ExitCode.OK
    reply = client.request({"op": "status"})
    if args.json:
        show(json.dumps(reply, ensure_ascii=False, indent=2))
    elif reply["current"]:
        show(f"running: {format_run(reply['current'])} · {reply['queued']} queued")
    else:
        show(f"idle · {reply['queued']} queued")
    return ExitCode.OK
