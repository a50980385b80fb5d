"""Whether the process that recorded a run is still there (reads /proc through psutil).

A run's ledger row says `running` from its start until it records its end. A run that died
without recording it (SIGKILL, or a ledger that failed under it) leaves the row `running`;
the next run of the job marks it `interrupted`, and until then the read commands ask this
module and show it `interrupted` once its process is gone.
"""

from __future__ import annotations

import psutil

# /proc's start times are in clock ticks since boot: allow for their rounding
_START_SLACK = 2.0


def running_since(pid: int, started_at: float) -> bool:
    """True while process `pid` exists, is not a zombie, and was started no later than
    `started_at` (a later process with that pid is someone else)."""
    if pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= started_at + _START_SLACK
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # it exists; whose it is cannot be told
        return True
