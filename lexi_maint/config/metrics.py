"""The [metrics] section: where node_exporter's textfile collector reads, how often to write."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config.table import Table


@dataclass(frozen=True)
class MetricsConfig:
    textfile_dir: Path | None = None  # None: no metrics
    interval: float = 30.0  # seconds between writes during a run

    def run_file(self, job: str) -> Path | None:
        return None if self.textfile_dir is None else self.textfile_dir / f"lexi-maint-{job}.prom"

    def daemon_file(self, job: str) -> Path | None:
        return None if self.textfile_dir is None else self.textfile_dir / f"lexi-maintd-{job}.prom"


def parse_metrics(top: Table) -> MetricsConfig:
    default = MetricsConfig()
    with top.sub("metrics") as t:
        directory = t.path("textfile_dir", None) if t.has("textfile_dir") else None
        interval = t.number("interval", default.interval, low=1.0, high=3600.0)
    return MetricsConfig(directory, interval)
