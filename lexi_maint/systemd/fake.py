"""An in-memory systemd for unit tests of the lifecycle (never used by the real daemon).

It keeps unit states, records every call in `calls`, and lets a test script what a job
unit ends with (`pipeline_results`) or make a call fail (`fail_on`). A service given
`workers` behaves like a gunicorn master: SIGTTOU to its main process removes one worker,
SIGTTIN adds one, unless the unit is in `deaf` (its master ignores them); a (re)start
brings back the configured count.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from lexi_maint.errors import SystemdError
from lexi_maint.systemd.dbus import UnitStatus
from lexi_maint.systemd.properties import UnitProperty


@dataclass
class FakeSystemd:
    units: dict[str, UnitStatus] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    properties: dict[str, list[UnitProperty]] = field(default_factory=dict)
    pipeline_results: list[tuple[str, int]] = field(default_factory=list)  # (result, status)
    fail_on: set[str] = field(default_factory=set)  # "stop:lexi.service", "start:..."
    polls_until_done: int = 1
    workers: dict[str, int] = field(default_factory=dict)  # gunicorn workers now
    configured_workers: dict[str, int] = field(default_factory=dict)
    deaf: set[str] = field(default_factory=set)  # masters that ignore TTOU/TTIN
    # run at each poll of a running job unit: a test's way to act mid-run
    on_poll: list[Callable[[FakeSystemd, str], None]] = field(default_factory=list)
    _polls: dict[str, int] = field(default_factory=dict)

    def add_service(self, name: str, state: str = "active", workers: int = 0) -> None:
        self.units[name] = UnitStatus(name, "loaded", state, "running", "success",
                                      f"/system.slice/{name}", 100, 0)  # fmt: skip
        if workers:
            self.workers[name] = self.configured_workers[name] = workers

    def _check(self, verb: str, name: str) -> None:
        self.calls.append((verb, name))
        if f"{verb}:{name}" in self.fail_on:
            raise SystemdError(f"{verb} {name} failed (scripted)")

    def stop_unit(self, name: str, timeout: float) -> str:
        self._check("stop", name)
        unit = self.units.get(name)
        if unit is not None:
            self.units[name] = replace(unit, active_state="inactive", sub_state="dead",
                                       main_pid=0)  # fmt: skip
            if name in self.workers:
                self.workers[name] = 0
        return "done"

    def start_unit(self, name: str, timeout: float) -> str:
        self._check("start", name)
        unit = self.units[name]
        if unit.active_state != "active":
            pid = max(u.main_pid for u in self.units.values()) + 1
            self.units[name] = replace(unit, active_state="active", sub_state="running",
                                       main_pid=pid)  # fmt: skip
            if name in self.configured_workers:
                self.workers[name] = self.configured_workers[name]
        return "done"

    def start_transient(self, name: str, props: Sequence[UnitProperty], timeout: float) -> str:
        self._check("start_transient", name)
        self.properties[name] = list(props)
        self.units[name] = UnitStatus(name, "loaded", "active", "running", "", f"/x/{name}",
                                      200, 0)  # fmt: skip
        return "done"

    def status(self, name: str) -> UnitStatus:
        self._check("status", name)
        unit = self.units.get(name)
        if unit is None:
            return UnitStatus(name, "not-found", "inactive", "dead", "", "", 0, 0)
        if name in self.properties and unit.active_state == "active":
            for hook in self.on_poll:
                hook(self, name)
            self._polls[name] = self._polls.get(name, 0) + 1
            if self._polls[name] > self.polls_until_done:
                result, code = (
                    self.pipeline_results.pop(0) if self.pipeline_results else ("success", 0)
                )
                unit = replace(unit, active_state="failed" if code else "inactive",
                               result=result, exec_main_status=code)  # fmt: skip
                self.units[name] = unit
        return unit

    def kill_main(self, name: str, signum: int) -> None:
        self._check(f"kill_main {signal.Signals(signum).name}", name)
        if name in self.deaf or name not in self.workers:
            return
        if signum == signal.SIGTTOU:
            self.workers[name] = max(0, self.workers[name] - 1)
        elif signum == signal.SIGTTIN:
            self.workers[name] += 1

    def reset_failed(self, name: str) -> None:
        self._check("reset_failed", name)

    def unref(self, name: str) -> None:
        self._check("unref", name)

    def list_units(self, pattern: str) -> list[str]:
        import fnmatch

        return [n for n, u in self.units.items() if fnmatch.fnmatch(n, pattern)]

    def close(self) -> None:
        self.calls.append(("close", ""))
