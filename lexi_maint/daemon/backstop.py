"""The systemd-level backstop (`ExecStopPost=` of lexi-batch@.service).

If the daemon answers, it is in charge and nothing happens. If it does not, and a hold
record says the service was stopped for a run, start the service so it never stays down
because the daemon died.
"""

from __future__ import annotations

import logging

from lexi_maint.config import Config
from lexi_maint.daemon.client import Client
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.hold import HoldStore

log = logging.getLogger(__name__)


def restore_orphaned(config: Config) -> int:
    try:
        Client(config.daemon.socket).request({"op": "status"})
        return 0  # the daemon answers: it restores the service itself
    except LexiMaintError as exc:
        reason = str(exc)
    hold = HoldStore(config.state_dir / "daemon").load()
    if hold is None:
        return 0
    from lexi_maint.systemd.dbus import PystemdSystemd

    log.warning("lexi-maintd unreachable (%s) and %s held by run %s: starting it",
                reason, hold.service, hold.run_id)  # fmt: skip
    systemd = PystemdSystemd()
    try:
        result = systemd.start_unit(hold.service, config.service.start_timeout)
    finally:
        systemd.close()
    if result != "done":
        log.error("starting %s ended with job result %s", hold.service, result)
        return 3
    return 0
