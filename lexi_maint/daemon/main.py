"""`lexi-maint daemon`: wiring of config, socket, run queue, executor thread, sd_notify.

Threads: the asyncio loop (socket, watchdog, STATUS) in the main thread; one executor
thread that owns the D-Bus connection and performs runs one at a time. The executor
beats a heartbeat; WATCHDOG=1 is only sent while that heartbeat is fresh, so a stuck
executor gets the daemon restarted by systemd, and the restart restores the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from lexi_maint.config import Config, load_config
from lexi_maint.daemon.runs import RunQueue, RunRecord
from lexi_maint.daemon.server import Server, listening_socket
from lexi_maint.errors import ConfigError, ExitCode, LexiMaintError
from lexi_maint.lifecycle.executor import Executor, RunRequest
from lexi_maint.lifecycle.health import wait_healthy
from lexi_maint.lifecycle.hold import HoldStore
from lexi_maint.lifecycle.machine import FINAL, Phase
from lexi_maint.lifecycle.procs import LeftoverKiller
from lexi_maint.lifecycle.recovery import recover_until_restored
from lexi_maint.report.ping import Ping, Pinger, PingQueue, daemon_report, outcome_ping
from lexi_maint.report.reporters import read_events
from lexi_maint.run.ledger import Ledger
from lexi_maint.state import StatePaths
from lexi_maint.systemd.notify import Notifier

log = logging.getLogger(__name__)


class Hub:
    """The executor's Listener: updates run records and streams a run's lines and status
    from its event file (the one channel for a run's progress); keeps the heartbeat."""

    def __init__(self, runs: RunQueue, state_dir: Path) -> None:
        self._runs = runs
        self._state_dir = state_dir
        self._offsets: dict[str, int] = {}
        self.last_beat = time.monotonic()

    def heartbeat(self) -> None:
        self.last_beat = time.monotonic()

    def phase(self, run_id: str, phase: Phase, message: str) -> None:
        self.progress(run_id)
        if phase not in FINAL:  # the final phase is set with the exit code, all at once
            self._runs.update(run_id, phase=phase, message=message)
        self._runs.publish(run_id, {"event": "phase", "phase": phase.value, "message": message})

    def progress(self, run_id: str) -> None:
        """Publish what the run's event file gained since the last call."""
        path = StatePaths(self._state_dir).events(run_id)
        records, offset = read_events(path, self._offsets.get(run_id, 0))
        self._offsets[run_id] = offset
        for event in records:
            line, status = event.get("line"), event.get("status")
            if isinstance(line, str):
                self._runs.publish(run_id, {"event": "line", "line": line})
            run = self._runs.get(run_id)
            if isinstance(status, str) and run is not None and run.status_text != status:
                self._runs.update(run_id, status_text=status)
                self._runs.publish(run_id, {"event": "status", "status": status})


def run_daemon(config_path: Path, environ: Mapping[str, str] = os.environ) -> int:
    notifier = Notifier(environ)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            log.error("configuration invalid: %s", problem)
        notifier.status(f"configuration invalid: {exc.problems[0]}")
        return ExitCode.CONFIG
    return asyncio.run(_main(config, notifier, environ))


async def _main(config: Config, notifier: Notifier, environ: Mapping[str, str]) -> int:
    runs = RunQueue()
    hub = Hub(runs, config.state_dir)
    stop = threading.Event()
    sock = listening_socket(config.daemon.socket, config.daemon.group, environ)
    server = await Server(runs, frozenset(config.jobs), config.daemon.group).serve(sock)
    worker = threading.Thread(
        target=_executor_main, args=(config, runs, hub, stop), name="executor", daemon=True
    )
    worker.start()
    notifier.ready(f"ready · {len(config.jobs)} jobs · socket {config.daemon.socket}")
    log.info("lexi-maintd ready with %d jobs", len(config.jobs))
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    tasks = [
        asyncio.create_task(_watchdog(notifier, hub)),
        asyncio.create_task(_status(notifier, runs)),
    ]
    await _until(stopping, worker)
    code = ExitCode.OK if worker.is_alive() else ExitCode.UNAVAILABLE
    notifier.stopping("stopping: cancelling the current run and restoring the service")
    runs.close()
    stop.set()
    await asyncio.to_thread(worker.join)
    for task in tasks:
        task.cancel()
    server.close()
    return code


async def _until(stopping: asyncio.Event, worker: threading.Thread) -> None:
    while not stopping.is_set() and worker.is_alive():
        try:
            await asyncio.wait_for(stopping.wait(), timeout=1.0)
        except TimeoutError:
            continue


async def _watchdog(notifier: Notifier, hub: Hub) -> None:
    if not notifier.watchdog_usec:
        return
    limit = notifier.watchdog_usec / 1_000_000
    warned = False
    while True:
        stale = time.monotonic() - hub.last_beat
        if stale < limit:
            notifier.watchdog()
            warned = False
        elif not warned:
            log.error("executor has not made progress for %.0f s: withholding WATCHDOG=1", stale)
            warned = True
        await asyncio.sleep(limit / 4)


async def _status(notifier: Notifier, runs: RunQueue) -> None:
    last = ""
    while True:
        text = status_text(runs)
        if text != last:
            notifier.status(text)
            last = text
        await asyncio.sleep(1.0)


def status_text(runs: RunQueue) -> str:
    queued = runs.queued()
    waiting = f" · {queued} queued" if queued else ""
    current = runs.current()
    if current is not None:
        return (current.status_text or f"{current.job}: {current.phase.value}") + waiting
    finished = [r for r in runs.runs() if r.final]
    if finished:
        last = finished[-1]
        return f"idle{waiting} · last: {last.job} {last.phase.value} (exit {last.exit_code})"
    return f"idle{waiting}"


def _executor_main(config: Config, runs: RunQueue, hub: Hub, stop: threading.Event) -> None:
    from lexi_maint.systemd.dbus import PystemdSystemd

    try:
        systemd = PystemdSystemd(heartbeat=hub.heartbeat)
    except LexiMaintError as exc:
        log.critical("cannot drive systemd: %s", exc)
        return
    killer = LeftoverKiller(config.service.extra_matchers, config.service.kill_grace)
    holds = HoldStore(config.daemon.records_dir)
    executor = Executor(config, systemd, killer, holds, hub, heartbeat=hub.heartbeat,
                        health=partial(wait_healthy, heartbeat=hub.heartbeat))  # fmt: skip
    pings = PingQueue(Pinger(config.alerts))
    interrupted = recover_until_restored(config, systemd, executor, holds, hub.heartbeat, stop)
    if interrupted is not None:
        runs.add_interrupted(interrupted)
    while not stop.is_set():
        hub.heartbeat()
        taken = runs.take(timeout=1.0)
        if taken is not None:
            _execute(config, executor, runs, hub, pings, *taken)
    pings.close()
    systemd.close()


def _execute(
    config: Config,
    executor: Executor,
    runs: RunQueue,
    hub: Hub,
    pings: PingQueue,
    record: Any,
    cancel: threading.Event,
) -> None:
    request = RunRequest(record.run_id, record.job, record.reprocess)
    pings.send(Ping.START, f"job {record.job} · run {record.run_id} · started by {record.trigger}")
    try:
        result = executor.execute(request, cancel)
        phase, code, message = result.phase, result.exit_code, result.message
        downtime, units = result.service_downtime, result.unit_results
    except Exception as exc:  # a bug must not kill the executor thread
        log.exception("run %s crashed", record.run_id)
        phase, code, message = Phase.FAILED, ExitCode.UNAVAILABLE, f"internal error: {exc}"
        downtime, units = None, ()
    hub.progress(record.run_id)
    updated = runs.update(record.run_id, phase=phase, message=message, exit_code=code,
                          finished_at=time.time())  # fmt: skip
    record_history(config, updated, downtime, units)
    body = daemon_report(record.job, record.run_id, record.trigger, phase.value, code, message,
                         downtime)  # fmt: skip
    pings.send(outcome_ping(code), body)


def record_history(
    config: Config, run: RunRecord, downtime: float | None, units: Sequence[str] = ()
) -> None:
    """Add what only the daemon knows to the run's ledger row (`lexi-maint runs`): exit
    status, trigger, service downtime, how each job unit ended. No ledger yet (first run
    refused by preflight): the daemon does not create one as root; the run stays in `list`
    only."""
    path = StatePaths(config.state_dir).ledger
    if not path.exists():
        return
    try:
        with Ledger.open(path) as ledger:
            ledger.record_daemon_run(
                run.job, run.run_id, status=run.phase.value,
                started_at=run.started_at or run.submitted_at, exit_status=run.exit_code or 0,
                trigger=run.trigger, service_downtime=downtime, job_units=units,
            )  # fmt: skip
    except LexiMaintError as exc:
        log.error("run %s: could not add it to the ledger's run history: %s", run.run_id, exc)
    metrics = config.metrics.daemon_file(run.job)
    if metrics is not None and downtime is not None:
        from lexi_maint.report.metrics import downtime_families, write_textfile

        try:
            write_textfile(metrics, downtime_families(run.job, run.run_id, downtime))
        except (OSError, LexiMaintError) as exc:
            log.warning("metrics: cannot write %s: %s", metrics, exc)
