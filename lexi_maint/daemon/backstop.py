"""The systemd-level backstop (`ExecStopPost=` of lexi-batch@.service).

If the daemon answers, it is in charge and nothing happens. If it does not, and a hold
record says the service was stopped for a run, stop that run's job units (the batch must not
compete with the service for memory) and start the service, so it never stays down because
the daemon died. The hold record stays: the next daemon start marks the run interrupted.
"""

from __future__ import annotations

import logging

from lexi_maint.config import Config
from lexi_maint.daemon.client import Client
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.hold import HoldStore
from lexi_maint.systemd.properties import job_unit_pattern

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 15.0  # a daemon that accepts but does not answer counts as gone


def restore_orphaned(config: Config) -> int:
    try:
        Client(config.daemon.socket, timeout=STATUS_TIMEOUT).request({"op": "status"})
        return 0  # the daemon answers: it restores the service itself
    except LexiMaintError as exc:
        reason = str(exc)
    hold = HoldStore(config.daemon.records_dir).load()
    if hold is None:
        return 0
    from lexi_maint.systemd.dbus import PystemdSystemd

    log.warning("lexi-maintd unreachable (%s) and %s held by run %s: starting it",
                reason, hold.service, hold.run_id)  # fmt: skip
    systemd = PystemdSystemd()
    try:
        for unit in systemd.list_units(job_unit_pattern(hold.run_id)):
            log.warning("stopping job unit %s of run %s", unit, hold.run_id)
            systemd.stop_unit(unit, config.service.stop_timeout)
        result = systemd.start_unit(hold.service, config.service.start_timeout)
    finally:
        systemd.close()
    if result != "done":
        log.error("starting %s ended with job result %s", hold.service, result)
        return 3
    return 0
