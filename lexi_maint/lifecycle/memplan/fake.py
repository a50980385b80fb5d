"""A service probe for unit tests: reads the worker count a FakeSystemd keeps."""

from __future__ import annotations

from dataclasses import dataclass

from lexi_maint.lifecycle.memplan.planner import ServiceMemory
from lexi_maint.systemd.dbus import UnitStatus
from lexi_maint.systemd.fake import FakeSystemd
from lexi_maint.units import MiB


@dataclass
class FakeServiceProbe:
    systemd: FakeSystemd
    per_worker: int = 200 * MiB
    master_memory: int = 50 * MiB
    master: str = "/venv/bin/python3 /venv/bin/gunicorn --workers 4 app:application"
    resizable: bool = True

    def read(self, status: UnitStatus) -> ServiceMemory | None:
        if status.active_state != "active" or not status.main_pid:
            return None
        workers = self.systemd.workers.get(status.name, 0)
        return ServiceMemory(
            unit=status.name,
            main_pid=status.main_pid,
            master=self.master,
            resizable=self.resizable,
            workers=workers,
            per_worker=self.per_worker,
            current=self.master_memory + workers * self.per_worker,
            source="PSS",
        )
