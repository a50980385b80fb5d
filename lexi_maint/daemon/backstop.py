"""The systemd-level backstop (`ExecStopPost=` of lexi-batch@.service).

If the daemon answers, it is in charge and nothing happens. If it does not, and a hold
record says the service was stopped for a run, stop that run's job units and its graph
server's unit (the batch must not compete with the service for memory) and start the
service, so it never stays down because the daemon died. A service shrunk for the run
(quiesce = shrink) gets its workers back from the same master instead; the hold record
then says "shrunk by 0", so the daemon does not grow it a second time. The hold record
stays: the next daemon start marks the run interrupted.
"""

from __future__ import annotations

import dataclasses
import logging

from lexi_maint.config import Config
from lexi_maint.daemon.client import Client
from lexi_maint.errors import ExitCode, LexiMaintError
from lexi_maint.lifecycle.graphunits import stop_graph_units
from lexi_maint.lifecycle.hold import Hold, HoldStore, current_boot_id
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.systemd.properties import GRAPH_UNIT_PATTERN, job_unit_pattern

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 15.0  # a daemon that accepts but does not answer counts as gone


def restore_orphaned(config: Config) -> int:
    try:
        Client(config.daemon.socket, timeout=STATUS_TIMEOUT).request({"op": "status"})
        return ExitCode.OK  # the daemon answers: it restores the service itself
    except LexiMaintError as exc:
        reason = str(exc)
    holds = HoldStore(config.daemon.records_dir)
    hold = holds.load()
    if hold is None:
        return ExitCode.OK
    from lexi_maint.systemd.dbus import PystemdSystemd

    log.warning("lexi-maintd unreachable (%s) and %s held by run %s: starting it",
                reason, hold.service, hold.run_id)  # fmt: skip
    systemd = PystemdSystemd()
    try:
        for unit in systemd.list_units(job_unit_pattern(hold.run_id)):
            log.warning("stopping job unit %s of run %s", unit, hold.run_id)
            systemd.stop_unit(unit, config.service.stop_timeout)
        stop_graph_units(systemd, GRAPH_UNIT_PATTERN, config.service.stop_timeout)
        _grow_back(config, systemd, holds, hold)
        result = systemd.start_unit(hold.service, config.service.start_timeout)
    finally:
        systemd.close()
    if result != "done":
        log.error("starting %s ended with job result %s", hold.service, result)
        return ExitCode.UNAVAILABLE
    return ExitCode.OK


def _grow_back(config: Config, systemd: SystemdPort, holds: HoldStore, hold: Hold) -> None:
    """Send the grow signal once per removed worker, if the master that lost them runs."""
    if hold.mode != "shrink" or not hold.shrunk_by or hold.boot_id != current_boot_id():
        return  # after a reboot the service runs its configured workers (and PIDs repeat)
    if systemd.status(hold.service).main_pid != hold.main_pid:
        log.warning("%s has a new main process: it runs its configured workers", hold.service)
        return
    try:  # recorded first: the daemon, back later, must not grow it a second time
        holds.save(dataclasses.replace(hold, shrunk_by=0))
    except OSError as exc:
        log.error("cannot update the hold record in %s (%s): %s is not grown back here;"
                  " it keeps serving with fewer workers until lexi-maintd starts and grows it",
                  holds.path.parent, exc.strerror or exc, hold.service)  # fmt: skip
        return
    for _ in range(hold.shrunk_by):
        systemd.kill_main(hold.service, config.service.grow_signal)
    log.warning("%s grown back by %d workers", hold.service, hold.shrunk_by)
