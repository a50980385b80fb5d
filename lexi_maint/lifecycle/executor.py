"""Performs one batch run: preflight, quiesce the service, run the job unit, restore.

Every step goes through a port (systemd, leftover killer, health check, hold record), so
each failure path can be driven in a unit test with fakes. The service is restored
whatever happened after it was stopped: success, failed documents, OOM, cancel, errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from lexi_maint.config import Config, JobConfig
from lexi_maint.errors import LexiMaintError, SystemdError
from lexi_maint.lifecycle.hold import HoldStore
from lexi_maint.lifecycle.machine import Machine, Phase, final_phase
from lexi_maint.lifecycle.ownership import hand_over, resolve_owner
from lexi_maint.lifecycle.preflight import Check, preflight_checks
from lexi_maint.lifecycle.sandbox import job_sandbox
from lexi_maint.procs import KillReport
from lexi_maint.systemd import journal
from lexi_maint.systemd.dbus import SystemdPort, UnitStatus
from lexi_maint.systemd.properties import (
    PipelineRun,
    UnitProperty,
    pipeline_properties,
    unit_name,
)

log = logging.getLogger(__name__)

EXIT_DONE, EXIT_DOCUMENTS_FAILED, EXIT_PREFLIGHT, EXIT_SYSTEM, EXIT_CANCELLED = 0, 1, 2, 3, 4
UNIT_START_TIMEOUT = 120.0


def give_state_to_job_user(config: Config, job: JobConfig) -> str:
    """The default state step: the job unit's user owns the ledger, graph and caches."""
    owner = resolve_owner(job.limits.user)
    changed = hand_over(config.state_dir, owner)
    return f"state {config.state_dir} belongs to {owner.name} ({changed} entries changed owner)"


class KillerPort(Protocol):
    def stop(self, cgroup: str) -> KillReport: ...


class Listener(Protocol):
    def phase(self, run_id: str, phase: Phase, message: str) -> None: ...
    def progress(self, run_id: str, status_text: str) -> None: ...
    def heartbeat(self) -> None: ...


@dataclass(frozen=True)
class RunRequest:
    run_id: str
    job: str
    reprocess: bool = False


@dataclass(frozen=True)
class RunResult:
    phase: Phase
    exit_code: int
    message: str
    unit_results: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default=())
    service_downtime: float | None = None  # seconds from stopping the service to restored


@dataclass(frozen=True)
class _PipelineOutcome:
    result: str  # the last job unit's Result (success, exit-code, oom-kill, timeout, ...)
    exit_status: int
    cancelled: bool
    unit_results: tuple[str, ...]


class Executor:
    def __init__(
        self,
        config: Config,
        systemd: SystemdPort,
        killer: KillerPort,
        holds: HoldStore,
        listener: Listener,
        *,
        health: Callable[[str, float, Callable[[], None]], str],
        checks: Callable[[Config, JobConfig, SystemdPort], list[Check]] = preflight_checks,
        prepare_state: Callable[[Config, JobConfig], str] = give_state_to_job_user,
    ) -> None:
        self._config = config
        self._systemd = systemd
        self._killer = killer
        self._holds = holds
        self._listener = listener
        self._health = health
        self._checks = checks
        self._prepare_state = prepare_state

    # -- one run ---------------------------------------------------------------------------

    def execute(self, request: RunRequest, cancel: threading.Event) -> RunResult:
        machine = Machine()
        job = self._config.job(request.job)
        self._enter(machine, request, Phase.PREFLIGHT, "checking before the service is touched")
        checks = self._checks(self._config, job, self._systemd)
        reasons = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        if not reasons:
            try:
                # last, after the checks: root may have touched the ledger or graph meanwhile
                self._log_run(request.run_id, self._prepare_state(self._config, job))
            except LexiMaintError as exc:
                reasons = str(exc)
        if reasons:
            message = f"preflight failed, {self._config.service.unit} left untouched: {reasons}"
            self._enter(machine, request, Phase.FAILED, message, journal.RUN_FAILED)
            return RunResult(Phase.FAILED, EXIT_PREFLIGHT, message, checks=tuple(checks))
        if cancel.is_set():
            self._enter(machine, request, Phase.CANCELLED, "cancelled before it started")
            return RunResult(Phase.CANCELLED, EXIT_CANCELLED, "cancelled before it started")
        return self._held(machine, request, job, cancel)

    def _held(
        self, machine: Machine, request: RunRequest, job: JobConfig, cancel: threading.Event
    ) -> RunResult:
        service = self._config.service.unit
        self._holds.record(request.run_id, job.name, service)
        outcome: _PipelineOutcome | None = None
        problems: list[str] = []
        stopped_at = time.monotonic()
        try:
            self._enter(machine, request, Phase.QUIESCE, f"stopping {service}")
            self._quiesce(request)
            self._enter(machine, request, Phase.RUN, "running the job unit", journal.RUN_STARTED)
            outcome = self._run_pipeline(request, job, cancel)
        except LexiMaintError as exc:
            problems.append(str(exc))
            log.error("run %s: %s", request.run_id, exc)
        finally:
            self._enter(machine, request, Phase.RESTORE, f"starting {service} again")
            restored = self._restore_reporting(request, problems)
        result = self._conclude(machine, request, outcome, problems, restored)
        downtime = time.monotonic() - stopped_at if restored else None
        return replace(result, service_downtime=downtime)

    def _conclude(
        self,
        machine: Machine,
        request: RunRequest,
        outcome: _PipelineOutcome | None,
        problems: list[str],
        restored: bool,
    ) -> RunResult:
        cancelled = outcome is not None and outcome.cancelled
        code, message = _verdict(outcome, problems, restored)
        phase = final_phase(cancelled=cancelled, succeeded=code == EXIT_DONE)
        if cancelled:
            code = EXIT_CANCELLED
        message_id = journal.RUN_FINISHED if code in (EXIT_DONE, EXIT_DOCUMENTS_FAILED) else (
            journal.RUN_FAILED)  # fmt: skip
        self._enter(machine, request, phase, message, message_id)
        units = outcome.unit_results if outcome else ()
        return RunResult(phase, code, message, units)

    # -- steps -----------------------------------------------------------------------------

    def _quiesce(self, request: RunRequest) -> None:
        service = self._config.service
        before = self._systemd.status(service.unit)
        cgroup = before.control_group or f"/system.slice/{service.unit}"
        result = self._systemd.stop_unit(service.unit, service.stop_timeout)
        if result != "done":
            raise SystemdError(f"stopping {service.unit} ended with job result {result!r}")
        report = self._killer.stop(cgroup)
        self._log(
            request,
            f"{service.unit} stopped; leftover processes: {len(report.found)} found,"
            f" {len(report.terminated)} ended on SIGTERM, {len(report.killed)} needed SIGKILL",
            journal.SERVICE_STOPPED,
        )

    def _run_pipeline(
        self, request: RunRequest, job: JobConfig, cancel: threading.Event
    ) -> _PipelineOutcome:
        workers = job.workers
        results: list[str] = []
        for attempt in range(1, job.limits.oom_restarts + 2):
            run = PipelineRun(
                job=job.name,
                run_id=request.run_id,
                config_path=self._config.source,
                workers=workers,
                reprocess=request.reprocess and attempt == 1,
                attempt=attempt,
            )
            status = self._run_unit(run, job, cancel)
            results.append(status.result)
            if cancel.is_set():
                return _PipelineOutcome(
                    status.result, status.exec_main_status, True, tuple(results)
                )
            if status.result != "oom-kill" or attempt > job.limits.oom_restarts:
                return _PipelineOutcome(
                    status.result, status.exec_main_status, False, tuple(results)
                )
            workers = max(1, workers // 2)
            self._log(
                request,
                f"job unit {unit_name(run)} was OOM-killed; the ledger keeps what finished;"
                f" resuming the remaining documents with {workers} workers",
                journal.RUN_FAILED,
            )
        raise AssertionError("unreachable: the loop always returns")

    def _run_unit(self, run: PipelineRun, job: JobConfig, cancel: threading.Event) -> UnitStatus:
        name = unit_name(run)
        props = [
            *pipeline_properties(
                run, job.limits, self._config.daemon, job_sandbox(self._config, job)
            ),
            UnitProperty("AddRef", "b", True),  # keep the unit loaded until its result is read
        ]
        result = self._systemd.start_transient(name, props, UNIT_START_TIMEOUT)
        if result != "done":
            raise SystemdError(f"job unit {name} did not start: job result {result!r}")
        try:
            return self._follow(name, run.run_id, cancel)
        finally:
            self._systemd.reset_failed(name)
            self._systemd.unref(name)

    def _follow(self, name: str, run_id: str, cancel: threading.Event) -> UnitStatus:
        stop_sent = False
        while True:
            status = self._systemd.status(name)
            self._listener.heartbeat()
            if status.status_text:
                self._listener.progress(run_id, status.status_text)
            if status.finished:
                return status
            if cancel.is_set() and not stop_sent:
                stop_sent = True
                self._log_run(run_id, f"cancelling: stopping {name}")
                self._systemd.stop_unit(name, self._config.service.stop_timeout)
                continue
            cancel.wait(self._config.daemon.poll_interval)

    def _restore_reporting(self, request: RunRequest, problems: list[str]) -> bool:
        try:
            self.restore(request.run_id)
        except (LexiMaintError, TimeoutError) as exc:
            problems.append(f"restoring {self._config.service.unit} failed: {exc}")
            log.error("run %s: restore failed: %s", request.run_id, exc)
            return False
        return True

    def restore(self, run_id: str) -> None:
        """Start the service, wait until it is active and healthy, then drop the hold."""
        service = self._config.service
        result = self._systemd.start_unit(service.unit, service.start_timeout)
        status = self._systemd.status(service.unit)
        if result != "done" or status.active_state != "active":
            raise SystemdError(
                f"starting {service.unit} ended with job result {result!r},"
                f" state {status.active_state}/{status.sub_state}"
            )
        health = "no health URL configured"
        if service.health_url:
            health = self._health(
                service.health_url, service.health_timeout, self._listener.heartbeat
            )
        self._holds.clear()
        self._log_run(run_id, f"{service.unit} active again ({health})", journal.SERVICE_RESTORED)

    # -- reporting -------------------------------------------------------------------------

    def _enter(
        self,
        machine: Machine,
        request: RunRequest,
        phase: Phase,
        message: str,
        message_id: str | None = None,
    ) -> None:
        machine.advance(phase)
        self._listener.phase(request.run_id, phase, message)
        extra = {"lexi_job": request.job, "lexi_run": request.run_id, "lexi_phase": phase.value}
        if message_id:
            extra["message_id"] = message_id
        log.info("run %s: %s: %s", request.run_id, phase.value, message, extra=extra)

    def _log(self, request: RunRequest, message: str, message_id: str) -> None:
        extra = {"lexi_job": request.job, "lexi_run": request.run_id, "message_id": message_id}
        log.info("run %s: %s", request.run_id, message, extra=extra)

    def _log_run(self, run_id: str, message: str, message_id: str | None = None) -> None:
        extra = {"lexi_run": run_id}
        if message_id:
            extra["message_id"] = message_id
        log.info("run %s: %s", run_id, message, extra=extra)


def _verdict(
    outcome: _PipelineOutcome | None, problems: list[str], restored: bool
) -> tuple[int, str]:
    if problems:
        return EXIT_SYSTEM, "; ".join(problems)
    if outcome is None:  # pragma: no cover - problems is set whenever outcome is missing
        return EXIT_SYSTEM, "the run did not complete"
    units = " → ".join(outcome.unit_results)
    if outcome.cancelled:
        return EXIT_CANCELLED, f"cancelled; service restored (job units: {units})"
    if outcome.result == "success":
        return EXIT_DONE, f"all documents done; service restored (job units: {units})"
    if outcome.result == "exit-code" and outcome.exit_status == 1:
        return EXIT_DOCUMENTS_FAILED, (
            f"some documents failed (see lexi-maint status JOB); service restored"
            f" (job units: {units})"
        )
    if outcome.result == "exit-code" and outcome.exit_status == 2:
        return EXIT_PREFLIGHT, f"the pipeline refused its configuration (job units: {units})"
    if outcome.result == "exit-code" and outcome.exit_status == 3:
        return EXIT_SYSTEM, (
            "the pipeline stopped: graph store, model API or disk unavailable past outage_budget"
            " (unprocessed documents stay pending), ledger or state_dir unusable, or the LLM API"
            " refused the key or the balance ran out"
            f" (journalctl -u 'lexi-pipeline-*'; job units: {units})"
        )
    detail = f"status {outcome.exit_status}" if outcome.result == "exit-code" else outcome.result
    return EXIT_SYSTEM, f"job unit ended with {detail} (job units: {units})"
