"""What a probe of a run's dependency (graph store, model API) found, as a plain value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Health:
    """`up`: it answers; `detail` says why not, or what the probe did (restarted it)."""

    up: bool
    detail: str = ""
    revived: bool = False  # it was down and the probe brought it back (a restarted server)


Probe = Callable[[], Health]
