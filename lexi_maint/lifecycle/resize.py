"""Shrinking and growing the service's gunicorn over D-Bus, waiting for the cgroup to agree.

`KillUnit(unit, "main", SIGTTOU)` removes one worker (gracefully, the others keep serving);
SIGTTIN adds one. Each wait is bounded by `[service] resize_timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from lexi_maint.config.service import ServiceConfig
from lexi_maint.errors import ResizeError
from lexi_maint.lifecycle.memplan.gather import ServiceProbePort
from lexi_maint.lifecycle.memplan.planner import ServiceMemory
from lexi_maint.systemd.dbus import SystemdPort

POLL_SECONDS = 0.2


class Resizer:
    def __init__(
        self,
        config: ServiceConfig,
        systemd: SystemdPort,
        probe: ServiceProbePort,
        heartbeat: Callable[[], None],
        *,
        poll: float = POLL_SECONDS,
    ) -> None:
        self._config = config
        self._systemd = systemd
        self._probe = probe
        self._heartbeat = heartbeat
        self._poll = poll

    def read(self) -> ServiceMemory | None:
        return self._probe.read(self._systemd.status(self._config.unit))

    def shrink(self, before: ServiceMemory, by: int, sent: Callable[[int], None]) -> ServiceMemory:
        """Remove `by` workers from the master `before` describes; `sent(n)` after each
        signal (the hold record). Returns the service once its cgroup shows fewer workers
        and less memory; raises ResizeError on timeout (the caller grows back)."""
        unit = self._config.unit
        for count in range(1, by + 1):
            self._systemd.kill_main(unit, self._config.shrink_signal)
            sent(count)
        target = before.workers - by

        def shrunk(now: ServiceMemory) -> bool:
            return now.workers <= target and (by == 0 or now.current < before.current)

        return self._wait(before.main_pid, shrunk, f"{unit} to shrink to {target} workers")

    def grow(self, main_pid: int, by: int, workers: int) -> str:
        """Add back `by` workers to master `main_pid` and wait for `workers` of them.
        Nothing is sent when another master runs now: it started with its configured count."""
        unit = self._config.unit
        status = self._systemd.status(unit)
        if status.active_state != "active" or status.main_pid != main_pid:
            return (
                f"MainPID is {status.main_pid or 'none'} ({status.active_state}), not"
                f" {main_pid}: nothing to grow back"
            )
        for _ in range(by):
            self._systemd.kill_main(unit, self._config.grow_signal)
        now = self._wait(
            main_pid, lambda s: s.workers >= workers, f"{unit} to grow back to {workers} workers"
        )
        return f"grown by {by} to {now.workers} workers"

    def _wait(
        self, main_pid: int, done: Callable[[ServiceMemory], bool], what: str
    ) -> ServiceMemory:
        deadline = time.monotonic() + self._config.resize_timeout
        last = "no reading"
        while True:
            self._heartbeat()
            now = self.read()
            if now is not None:
                if now.main_pid != main_pid:
                    raise ResizeError(f"waiting for {what}: MainPID changed to {now.main_pid}")
                if done(now):
                    return now
                last = f"{now.workers} workers, {now.current // 2**20} MiB"
            if time.monotonic() >= deadline:
                raise ResizeError(
                    f"timed out after {self._config.resize_timeout:g} s waiting for {what}"
                    f" (last seen: {last})"
                )
            time.sleep(self._poll)
