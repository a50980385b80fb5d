"""`lexi-maint status JOB` and `lexi-maint runs`: the ledger's documents and run history.
A read command creates nothing, not even an empty ledger."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from lexi_maint.config import Config
from lexi_maint.errors import ExitCode


def status_command(
    config: Config, job_name: str, *, as_json: bool, failed: bool, out: TextIO
) -> int:
    from lexi_maint.procfs import running_since
    from lexi_maint.report.status import no_runs_yet, render_status, status_json
    from lexi_maint.run.ledger import Ledger
    from lexi_maint.state import StatePaths

    job = config.job(job_name)
    path = StatePaths(config.state_dir).ledger
    if not path.exists():  # a read command creates nothing, not even an empty ledger
        if as_json:
            json.dump(status_json(job.name, [], None), out, indent=2)
            out.write("\n")
        else:
            out.write(no_runs_yet(job.name, config.state_dir))
        return ExitCode.OK
    with Ledger.open(path) as ledger:
        records = ledger.documents(job.name)
        last_run = ledger.last_run(job.name, alive=running_since)
    if as_json:
        json.dump(
            status_json(job.name, records, last_run, failed_only=failed),
            out,
            indent=2,
            ensure_ascii=False,
        )
        out.write("\n")
    else:
        out.write(render_status(job.name, records, last_run, failed_only=failed))
    return ExitCode.OK


def runs_command(config: Config, args: argparse.Namespace) -> int:
    from lexi_maint.procfs import running_since
    from lexi_maint.report.history import no_runs, render_runs, runs_json
    from lexi_maint.run.ledger import Ledger
    from lexi_maint.state import StatePaths

    job = config.job(args.job).name if args.job else None
    path = StatePaths(config.state_dir).ledger
    if not path.exists():  # a read command creates nothing
        runs = []
    else:
        with Ledger.open(path) as ledger:
            runs = ledger.runs(job, args.limit, alive=running_since)
    if args.json:
        print(json.dumps(runs_json(runs), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_runs(runs) if runs else no_runs(job, config.state_dir))
    return ExitCode.OK
