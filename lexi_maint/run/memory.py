"""Memory pressure: the cgroup's usage against its limits, or the system's when unlimited.

`read_memory()` is the adapter (reads /proc and /sys/fs/cgroup); `tightest()` and
`MemoryReading.ratio` are pure so the watermark logic is tested with plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from lexi_maint.procfs import CGROUP_ROOT, own_cgroup


@dataclass(frozen=True)
class MemoryReading:
    used: int
    limit: int
    source: str  # e.g. "cgroup /system.slice/x.service memory.high" or "system"

    @property
    def ratio(self) -> float:
        return self.used / self.limit if self.limit > 0 else 0.0

    def describe(self) -> str:
        mib = 2**20
        return (
            f"{self.used // mib} MiB of {self.limit // mib} MiB ({self.ratio:.0%}, {self.source})"
        )


MemoryProbe = Callable[[], MemoryReading]


@dataclass(frozen=True)
class CgroupLevel:
    """One cgroup on the path from ours up to the root, with what its files said."""

    path: str
    current: int | None
    high: int | None  # None: "max" or absent
    max: int | None


def tightest(levels: Iterable[CgroupLevel]) -> MemoryReading | None:
    """The reading with the highest usage ratio among levels that have a limit."""
    best: MemoryReading | None = None
    for level in levels:
        if level.current is None:
            continue
        for name, limit in (("memory.high", level.high), ("memory.max", level.max)):
            if limit is None or limit <= 0:
                continue
            reading = MemoryReading(level.current, limit, f"cgroup {level.path} {name}")
            if best is None or reading.ratio > best.ratio:
                best = reading
    return best


def read_memory() -> MemoryReading:
    """The memory reading new work is judged by (adapter: touches /proc and /sys)."""
    reading = tightest(_cgroup_levels(own_cgroup()))
    if reading is not None:
        return reading
    vm = psutil.virtual_memory()
    return MemoryReading(vm.total - vm.available, vm.total, "system")


def _cgroup_levels(cgroup: str | None) -> list[CgroupLevel]:
    if cgroup is None:
        return []
    levels = []
    path = Path(cgroup)
    while True:
        directory = CGROUP_ROOT / str(path).lstrip("/")
        levels.append(
            CgroupLevel(
                path=str(path),
                current=_read_bytes(directory / "memory.current"),
                high=_read_bytes(directory / "memory.high"),
                max=_read_bytes(directory / "memory.max"),
            )
        )
        if path == path.parent:
            return levels
        path = path.parent


def _read_bytes(file: Path) -> int | None:
    try:
        text = file.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
