"""Stopping a run's graph server units (`lexi-graph-RUN.service`), whoever has to.

The executor stops its run's graph unit after the last job unit; recovery after a daemon
crash and the lexi-batch@ backstop stop any that a dead daemon left behind. One function,
so that the three agree on what stopping one means.
"""

from __future__ import annotations

import logging

from lexi_maint.errors import SystemdError
from lexi_maint.systemd.dbus import SystemdPort

log = logging.getLogger(__name__)


def stop_graph_units(systemd: SystemdPort, pattern: str, timeout: float) -> None:
    """Stop the graph server units matching `pattern` and forget their failures. A unit
    that will not stop is logged, not raised: the run's own outcome is what counts, and the
    next run or daemon start tries again."""
    for name in systemd.list_units(pattern):
        try:
            result = systemd.stop_unit(name, timeout)
            if result != "done":
                log.error("stopping graph unit %s ended with job result %r", name, result)
        except SystemdError as exc:
            log.error("stopping graph unit %s failed: %s", name, exc)
        systemd.reset_failed(name)
