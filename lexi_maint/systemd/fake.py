"""An in-memory systemd for unit tests of the lifecycle (never used by the real daemon).

It keeps unit states, records every call in `calls`, and lets a test script what a job
unit ends with (`pipeline_results`) or make a call fail (`fail_on`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lexi_maint.errors import SystemdError
from lexi_maint.systemd.dbus import UnitProcess, UnitStatus
from lexi_maint.systemd.properties import UnitProperty


@dataclass
class FakeSystemd:
    units: dict[str, UnitStatus] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, list[UnitProperty]] = field(default_factory=dict)
    pipeline_results: list[tuple[str, int]] = field(default_factory=list)  # (result, status)
    fail_on: set[str] = field(default_factory=set)  # "stop:lexi.service", "start:..."
    polls_until_done: int = 1
    _polls: dict[str, int] = field(default_factory=dict)

    def add_service(self, name: str, state: str = "active") -> None:
        self.units[name] = UnitStatus(name, "loaded", state, "running", "success",
                                      f"/system.slice/{name}", 100, "", 0)  # fmt: skip

    def _check(self, verb: str, name: str) -> None:
        self.calls.append((verb, name))
        if f"{verb}:{name}" in self.fail_on:
            raise SystemdError(f"{verb} {name} failed (scripted)")

    def stop_unit(self, name: str, timeout: float) -> str:
        self._check("stop", name)
        unit = self.units.get(name)
        if unit is not None:
            self.units[name] = replace(unit, active_state="inactive", sub_state="dead")
        return "done"

    def start_unit(self, name: str, timeout: float) -> str:
        self._check("start", name)
        unit = self.units[name]
        self.units[name] = replace(unit, active_state="active", sub_state="running")
        return "done"

    def start_transient(self, name: str, props: Sequence[UnitProperty], timeout: float) -> str:
        self._check("start_transient", name)
        self.properties[name] = list(props)
        self.units[name] = UnitStatus(name, "loaded", "active", "running", "", f"/x/{name}",
                                      200, "job: 1/2 ✅1 ❌0", 0)  # fmt: skip
        return "done"

    def status(self, name: str) -> UnitStatus:
        self._check("status", name)
        unit = self.units.get(name)
        if unit is None:
            return UnitStatus(name, "not-found", "inactive", "dead", "", "", 0, "", 0)
        if name in self.properties and unit.active_state == "active":
            self._polls[name] = self._polls.get(name, 0) + 1
            if self._polls[name] > self.polls_until_done:
                result, code = (
                    self.pipeline_results.pop(0) if self.pipeline_results else ("success", 0)
                )
                unit = replace(unit, active_state="failed" if code else "inactive",
                               result=result, exec_main_status=code)  # fmt: skip
                self.units[name] = unit
        return unit

    def processes(self, name: str) -> list[UnitProcess]:
        return []

    def kill(self, name: str, signum: int) -> None:
        self._check("kill", name)

    def reset_failed(self, name: str) -> None:
        self._check("reset_failed", name)

    def unref(self, name: str) -> None:
        self._check("unref", name)

    def list_units(self, pattern: str) -> list[str]:
        import fnmatch

        return [n for n, u in self.units.items() if fnmatch.fnmatch(n, pattern)]

    def close(self) -> None:
        self.calls.append(("close", ""))
