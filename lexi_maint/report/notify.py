"""`lexi-maint notify-failure JOB`: what lexi-notify@JOB.service runs when lexi-batch@JOB fails.

`lexi-batch@.service` has `OnFailure=lexi-notify@%i.service`. systemd (251 and later) hands
the failed unit's result to the OnFailure unit as $MONITOR_SERVICE_RESULT,
$MONITOR_EXIT_CODE, $MONITOR_EXIT_STATUS, $MONITOR_UNIT and $MONITOR_INVOCATION_ID. This
command writes a short report (those, plus the job's last run from the ledger) to the
configured notifier's standard input (`[alerts] on_failure`, an argv such as
["/usr/local/bin/mail-ops", "lexi-maint failed"]), with $LEXI_JOB and $LEXI_UNIT set, bounded
by `on_failure_timeout`. Without a configured command it prints the report, so the journal
holds it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import TextIO

from lexi_maint.config import Config
from lexi_maint.errors import LexiMaintError
from lexi_maint.report.history import HEADER, run_cells
from lexi_maint.run.ledger import Ledger
from lexi_maint.state import StatePaths

MONITOR = ("MONITOR_UNIT", "MONITOR_SERVICE_RESULT", "MONITOR_EXIT_CODE", "MONITOR_EXIT_STATUS",
           "MONITOR_INVOCATION_ID")  # fmt: skip


def failure_report(job: str, environ: Mapping[str, str], last_run: tuple[str, ...] | str) -> str:
    """The notifier's input (pure)."""
    unit = environ.get("MONITOR_UNIT", f"lexi-batch@{job}.service")
    lines = [f"{unit} failed (lexi-maint job {job})"]
    lines += [f"{key}={environ[key]}" for key in MONITOR if key in environ]
    if isinstance(last_run, str):
        lines.append(f"last run: {last_run}")
    else:
        lines.append("last run: " + ", ".join(
            f"{name} {value}" for name, value in zip(HEADER, last_run, strict=True)))  # fmt: skip
    invocation = environ.get("MONITOR_INVOCATION_ID")
    where = f"journalctl _SYSTEMD_INVOCATION_ID={invocation}" if invocation else (
        f"journalctl -u {unit}")  # fmt: skip
    lines.append(f"see: {where}; lexi-maint runs {job}; lexi-maint status {job} --failed")
    return "\n".join(lines) + "\n"


def notify_failure(
    config: Config, job_name: str, out: TextIO, environ: Mapping[str, str] = os.environ
) -> int:
    job = config.job(job_name)
    report = failure_report(job.name, environ, _last_run(config, job.name))
    command = config.alerts.on_failure
    if not command:
        out.write(report + "(no [alerts] on_failure command configured)\n")
        return 0
    env = {**environ, "LEXI_JOB": job.name,
           "LEXI_UNIT": environ.get("MONITOR_UNIT", f"lexi-batch@{job.name}.service")}  # fmt: skip
    try:
        proc = subprocess.run(command, input=report, text=True, env=env,
                              timeout=config.alerts.on_failure_timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        out.write(f"notifier {command[0]} did not finish within "
                  f"{config.alerts.on_failure_timeout:g} s\n")  # fmt: skip
        return 3
    except OSError as exc:
        out.write(f"notifier {command[0]} could not run: {exc.strerror}\n")
        return 3
    return proc.returncode


def _last_run(config: Config, job: str) -> tuple[str, ...] | str:
    """The job's last run, or why it is not known: the report goes out either way."""
    path = StatePaths(config.state_dir).ledger
    if not path.exists():
        return f"none recorded in {config.state_dir}"
    try:
        with Ledger.open(path) as ledger:
            runs = ledger.runs(job, limit=1)
    except LexiMaintError as exc:
        return f"unknown ({exc})"
    return run_cells(runs[0]) if runs else f"none recorded in {config.state_dir}"
