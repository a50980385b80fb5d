"""At daemon start: a recorded hold means a daemon died (or the machine rebooted) mid-run.

Stop what is left of that run's job units and its graph server's unit, restore the
service, mark the run interrupted in the ledger, and return what happened (`Interrupted`):
the daemon records it in its list of runs. Retried until the service is restored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lexi_maint.config import Config
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.attempts import report
from lexi_maint.lifecycle.executor import Executor
from lexi_maint.lifecycle.graphunits import stop_graph_units
from lexi_maint.lifecycle.hold import Hold, HoldStore, current_boot_id
from lexi_maint.run.ledger import Ledger
from lexi_maint.state import StatePaths
from lexi_maint.systemd import journal
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.systemd.properties import GRAPH_UNIT_PATTERN, job_unit_pattern

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class Interrupted:
    """A run a dead daemon (or a reboot) left behind, now cleaned up."""

    run_id: str
    job: str
    message: str
    since: float  # when the run took the service
    finished_at: float


def recover_until_restored(
    config: Config,
    systemd: SystemdPort,
    executor: Executor,
    holds: HoldStore,
    heartbeat: Callable[[], None],
    stop: threading.Event,
) -> Interrupted | None:
    """The run found interrupted and restored, or None (none held, or told to stop)."""
    while not stop.is_set():
        try:
            hold = holds.load()
        except OSError as exc:
            log.error("%s; remove it after checking %s is running", exc, config.service.unit)
            return None
        if hold is None:
            return None
        try:
            return recover(config, systemd, executor, hold)
        except LexiMaintError as exc:
            log.error("restoring %s after run %s failed: %s; retrying in %.0f s",
                      hold.service, hold.run_id, exc, RETRY_SECONDS)  # fmt: skip
        deadline = time.monotonic() + RETRY_SECONDS
        while time.monotonic() < deadline and not stop.is_set():
            heartbeat()
            stop.wait(1.0)
    return None


def recover(config: Config, systemd: SystemdPort, executor: Executor, hold: Hold) -> Interrupted:
    rebooted = hold.boot_id != current_boot_id()
    why = "the machine rebooted" if rebooted else "the daemon stopped"
    extra = {"lexi_job": hold.job, "lexi_run": hold.run_id, "lexi_phase": "recover"}
    log.warning("%s held by run %s when %s: restoring it", hold.service, hold.run_id, why,
                extra=extra)  # fmt: skip
    for unit in systemd.list_units(job_unit_pattern(hold.run_id)):
        log.warning("stopping job unit %s left by run %s", unit, hold.run_id, extra=extra)
        systemd.stop_unit(unit, config.service.stop_timeout)
        systemd.reset_failed(unit)
    # its graph server's unit, after the job units that used it (and any other one: the
    # daemon runs one run at a time, so none of them serves a run now)
    stop_graph_units(systemd, GRAPH_UNIT_PATTERN, config.service.stop_timeout)
    executor.restore(hold.run_id)
    message = f"interrupted ({why}); {hold.service} restored; submit the job again to resume"
    _mark_ledger(config, hold)
    log.warning("run %s: %s", hold.run_id, message,
                extra={**extra, "message_id": journal.RUN_FAILED})  # fmt: skip
    return Interrupted(hold.run_id, hold.job, message, hold.since, time.time())


def _mark_ledger(config: Config, hold: Hold) -> None:
    """The run is interrupted; the attempts its job unit left open are closed, their spend
    folded in, and each gets its journal entry (the job may have left the configuration
    meanwhile: then its spend journal is not known and nothing will retry them)."""
    job = config.jobs.get(hold.job)
    try:
        with Ledger.open(
            StatePaths(config.state_dir).ledger, spend_journal=job.llm.cache_path if job else None
        ) as ledger:
            closed = ledger.finish_run(hold.job, hold.run_id, "interrupted", {})
    except LexiMaintError as exc:
        log.error("could not mark run %s interrupted in the ledger: %s", hold.run_id, exc)
        return
    report(closed, job.max_attempts if job else 0)  # a job no longer configured: no retry
