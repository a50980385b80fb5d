"""Performs one batch run: preflight, quiesce the service, run the job unit, restore.

Every step goes through a port (systemd, leftover killer, service probe, health check,
hold record), so each failure path can be driven in a unit test with fakes. The service is
restored whatever happened after it was stopped or shrunk: success, failed documents, OOM,
cancel, errors. How it is quiesced is the job's `quiesce` mode (lifecycle.quiesce).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

from lexi_maint.config import Config, JobConfig
from lexi_maint.config.service import Quiesce
from lexi_maint.errors import ExitCode, LexiMaintError, QuiesceRefused, SystemdError
from lexi_maint.graph.backend import embedded
from lexi_maint.lifecycle.attempts import AttemptsPort, LedgerAttempts
from lexi_maint.lifecycle.graphunits import stop_graph_units
from lexi_maint.lifecycle.hold import Hold, HoldStore, current_boot_id
from lexi_maint.lifecycle.machine import Machine, Phase, final_phase
from lexi_maint.lifecycle.memplan.gather import ServiceProbe, ServiceProbePort, available_memory
from lexi_maint.lifecycle.ownership import hand_over, resolve_owner
from lexi_maint.lifecycle.preflight import Check, preflight_checks
from lexi_maint.lifecycle.procs import KillReport
from lexi_maint.lifecycle.quiesce import QuiesceDecision, plan_quiesce
from lexi_maint.lifecycle.resize import Resizer
from lexi_maint.lifecycle.sandbox import job_sandbox
from lexi_maint.systemd import journal
from lexi_maint.systemd.dbus import SystemdPort, UnitStatus
from lexi_maint.systemd.properties import (
    GRAPH_UNIT_PATTERN,
    GraphServerUnit,
    PipelineRun,
    UnitProperty,
    graph_properties,
    graph_unit_name,
    pipeline_properties,
    unit_name,
)
from lexi_maint.units import format_size

log = logging.getLogger(__name__)

UNIT_START_TIMEOUT = 120.0
# the graph unit is started once its server answers PING: one that replays a long log
# answers LOADING for up to graph.falkorserver.LOAD_TIMEOUT (900 s) first
GRAPH_START_TIMEOUT = 960.0


def give_state_to_job_user(config: Config, job: JobConfig) -> str:
    """The default state step: the job unit's user owns the ledger, graph and caches."""
    owner = resolve_owner(job.limits.user)
    changed = hand_over(config.state_dir, owner)
    return f"state {config.state_dir} belongs to {owner.name} ({changed} entries changed owner)"


class KillerPort(Protocol):
    def stop(self, cgroup: str) -> KillReport: ...


class Listener(Protocol):
    def phase(self, run_id: str, phase: Phase, message: str) -> None: ...
    def progress(self, run_id: str) -> None:
        """The run's job unit is still going: take in what it reported since."""


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
        heartbeat: Callable[[], None],
        health: Callable[[str, float], str],
        checks: Callable[[Config, JobConfig, SystemdPort], list[Check]] = preflight_checks,
        prepare_state: Callable[[Config, JobConfig], str] = give_state_to_job_user,
        probe: ServiceProbePort | None = None,
        available: Callable[[], int] = available_memory,
        attempts: AttemptsPort | None = None,
    ) -> None:
        self._config = config
        self._systemd = systemd
        self._killer = killer
        self._holds = holds
        self._listener = listener
        self._heartbeat = heartbeat
        self._health = health
        self._checks = checks
        self._prepare_state = prepare_state
        self._probe = probe if probe is not None else ServiceProbe(config.service)
        self._available = available
        self._attempts = attempts if attempts is not None else LedgerAttempts(config.state_dir)
        self._resizer = Resizer(config.service, systemd, self._probe, heartbeat)

    # -- one run ---------------------------------------------------------------------------

    def execute(self, request: RunRequest, cancel: threading.Event) -> RunResult:
        machine = Machine()
        job = self._config.job(request.job)
        self._enter(machine, request, Phase.PREFLIGHT, "checking before the service is touched")
        checks = self._checks(self._config, job, self._systemd)
        started = time.monotonic()
        decision = plan_quiesce(self._config, job, self._systemd, self._probe, self._available,
                                reprocess=request.reprocess)  # fmt: skip
        checks.append(quiesce_check(decision))
        self._log_run(request.run_id, f"{decision.describe()}; {decision.plan.describe()}"
                      f" (planned in {time.monotonic() - started:.2f} s)")  # fmt: skip
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
            return RunResult(Phase.FAILED, ExitCode.CONFIG, message, checks=tuple(checks))
        if cancel.is_set():
            self._enter(machine, request, Phase.CANCELLED, "cancelled before it started")
            return RunResult(Phase.CANCELLED, ExitCode.CANCELLED, "cancelled before it started")
        return self._held(machine, request, job, cancel, decision)

    def _held(
        self,
        machine: Machine,
        request: RunRequest,
        job: JobConfig,
        cancel: threading.Event,
        decision: QuiesceDecision,
    ) -> RunResult:
        service = self._config.service.unit
        before = decision.service
        hold = self._holds.record(
            request.run_id,
            job.name,
            service,
            mode=decision.action.value,
            main_pid=before.main_pid if before else 0,
            workers=before.workers if before else 0,
        )
        outcome: _PipelineOutcome | None = None
        problems: list[str] = []
        refused = ""
        stopped_at = time.monotonic()
        try:
            self._enter(machine, request, Phase.QUIESCE, _quiesce_message(decision, service))
            self._quiesce(request, decision, hold)
            self._enter(machine, request, Phase.RUN, "running the job unit", journal.RUN_STARTED)
            outcome = self._run_pipeline(request, job, cancel, decision)
        except QuiesceRefused as exc:
            refused = str(exc)
            log.error("run %s: %s", request.run_id, exc)
        except LexiMaintError as exc:
            problems.append(str(exc))
            log.error("run %s: %s", request.run_id, exc)
        finally:
            self._enter(machine, request, Phase.RESTORE, _restore_message(decision, service))
            restored = self._restore_reporting(request, problems)
        if refused and not problems:
            message = f"preflight failed: {refused}; {service} grown back"
            self._enter(machine, request, Phase.FAILED, message, journal.RUN_FAILED)
            return RunResult(Phase.FAILED, ExitCode.CONFIG, message)
        result = self._conclude(machine, request, outcome, problems, restored)
        downtime = time.monotonic() - stopped_at if restored else None
        if decision.action is not Quiesce.STOP and downtime is not None:
            downtime = 0.0  # shrunk or left running: the service answered throughout
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
        phase = final_phase(cancelled=cancelled, succeeded=code == ExitCode.OK)
        if cancelled:
            code = ExitCode.CANCELLED
        message_id = journal.RUN_FINISHED if code in (ExitCode.OK, ExitCode.FAILED) else (
            journal.RUN_FAILED)  # fmt: skip
        self._enter(machine, request, phase, message, message_id)
        units = outcome.unit_results if outcome else ()
        return RunResult(phase, code, message, units)

    # -- steps -----------------------------------------------------------------------------

    def _quiesce(self, request: RunRequest, decision: QuiesceDecision, hold: Hold) -> None:
        if decision.action is Quiesce.STOP:
            self._stop_service(request)
        elif decision.action is Quiesce.SHRINK and decision.remove:
            self._shrink(request, decision, hold)

    def _shrink(self, request: RunRequest, decision: QuiesceDecision, hold: Hold) -> None:
        before = decision.service
        assert before is not None  # decide() never shrinks a service it could not read

        def sent(count: int) -> None:  # durable before the next signal goes out
            self._holds.save(replace(hold, shrunk_by=count))

        try:
            now = self._resizer.shrink(before, decision.remove, sent)
        except LexiMaintError as exc:
            raise QuiesceRefused(f"{self._config.service.unit} did not shrink: {exc}") from exc
        self._log(
            request,
            f"{before.unit} shrunk by {decision.remove} from MainPID {before.main_pid}:"
            f" {now.workers} workers keep serving, cgroup {now.current // 2**20} MiB"
            f" (was {before.current // 2**20} MiB)",
            journal.SERVICE_STOPPED,
        )

    def _stop_service(self, request: RunRequest) -> None:
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
        self,
        request: RunRequest,
        job: JobConfig,
        cancel: threading.Event,
        decision: QuiesceDecision,
    ) -> _PipelineOutcome:
        with self._graph_server(request, job, decision) as graph_unit:
            return self._run_attempts(request, job, cancel, decision, graph_unit)

    def _run_attempts(
        self,
        request: RunRequest,
        job: JobConfig,
        cancel: threading.Event,
        decision: QuiesceDecision,
        graph_unit: str,
    ) -> _PipelineOutcome:
        workers = decision.workers(job.workers)
        job = replace(job, limits=decision.limits(job.limits))  # the plan's caps
        results: list[str] = []
        for attempt in range(1, job.limits.oom_restarts + 2):
            run = PipelineRun(
                job=job.name,
                run_id=request.run_id,
                config_path=self._config.source,
                workers=workers,
                reprocess=request.reprocess and attempt == 1,
                attempt=attempt,
                graph_unit=graph_unit,
            )
            status = self._run_unit(run, job, cancel)
            results.append(status.result)
            # the unit is gone: what its runner could not record is recorded now
            self._attempts.close(job, run.run_id, unit_name(run), status.result)
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

    @contextmanager
    def _graph_server(
        self, request: RunRequest, job: JobConfig, decision: QuiesceDecision
    ) -> Iterator[str]:
        """The embedded graph server's own unit for the run, stopped whatever happened; its
        name (or "" when the graph store runs elsewhere: the job unit then connects)."""
        if not embedded(self._config.graph):
            yield ""
            return
        stop_graph_units(self._systemd, GRAPH_UNIT_PATTERN, self._config.service.stop_timeout)
        unit = GraphServerUnit(
            run_id=request.run_id,
            config_path=self._config.source,
            memory_high=decision.plan.graph.memory_high,
            memory_max=decision.plan.graph.memory_max,
            start_timeout=GRAPH_START_TIMEOUT,
            user=job.limits.user or "",
        )
        name = graph_unit_name(request.run_id)
        props = graph_properties(unit, self._config.daemon, job_sandbox(self._config, job))
        try:
            result = self._systemd.start_transient(name, props, GRAPH_START_TIMEOUT)
            if result != "done":
                raise SystemdError(
                    f"graph unit {name} did not start: job result {result!r} (journalctl -u {name})"
                )
            self._log_run(request.run_id, f"graph server started in {name}"
                          f" (MemoryMax={format_size(unit.memory_max)})")  # fmt: skip
            yield name
        finally:
            stop_graph_units(self._systemd, name, self._config.service.stop_timeout)

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
            self._heartbeat()
            self._listener.progress(run_id)
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
        """Bring the service back as the hold record says it was left (started again, or
        grown back), wait until it is active and healthy, then drop the hold."""
        service = self._config.service
        hold = self._holds.load()
        grown = ""
        if hold is not None and hold.shrunk_by:
            # recorded first: a grow cut short leaves the service a worker short, never
            # grown twice past its configured count
            self._holds.save(replace(hold, shrunk_by=0))
            if hold.boot_id == current_boot_id():
                grown = self._resizer.grow(hold.main_pid, hold.shrunk_by, hold.workers) + "; "
            else:  # after a reboot a MainPID may repeat: the service runs its configured count
                grown = "rebooted since it was shrunk: nothing to grow back; "
        # a no-op for a running service; starts one that was stopped, or died meanwhile
        result = self._systemd.start_unit(service.unit, service.start_timeout)
        status = self._systemd.status(service.unit)
        if result != "done" or status.active_state != "active":
            raise SystemdError(
                f"starting {service.unit} ended with job result {result!r},"
                f" state {status.active_state}/{status.sub_state}"
            )
        health = "no health URL configured"
        if service.health_url:
            health = self._health(service.health_url, service.health_timeout)
        self._holds.clear()
        self._log_run(run_id, f"{service.unit} active again ({grown}{health})",
                      journal.SERVICE_RESTORED)  # fmt: skip

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


def quiesce_check(decision: QuiesceDecision) -> Check:
    """The quiesce decision as a preflight check: the plan with its inputs, or the refusal."""
    return Check(
        "quiesce", not decision.problem, f"{decision.describe()}; {decision.plan.describe()}"
    )


def _quiesce_message(decision: QuiesceDecision, unit: str) -> str:
    if decision.action is Quiesce.SHRINK:
        return f"shrinking {unit} by {decision.remove} workers"
    if decision.action is Quiesce.NONE:
        return f"leaving {unit} running (quiesce = none)"
    return f"stopping {unit}"


def _restore_message(decision: QuiesceDecision, unit: str) -> str:
    if decision.action is Quiesce.SHRINK:
        return f"growing {unit} back"
    if decision.action is Quiesce.NONE:
        return f"checking {unit}"
    return f"starting {unit} again"


def _verdict(
    outcome: _PipelineOutcome | None, problems: list[str], restored: bool
) -> tuple[int, str]:
    if problems:
        return ExitCode.UNAVAILABLE, "; ".join(problems)
    if outcome is None:  # pragma: no cover - problems is set whenever outcome is missing
        return ExitCode.UNAVAILABLE, "the run did not complete"
    units = " → ".join(outcome.unit_results)
    if outcome.cancelled:
        return ExitCode.CANCELLED, f"cancelled; service restored (job units: {units})"
    if outcome.result == "success":
        return ExitCode.OK, f"all documents done; service restored (job units: {units})"
    if outcome.result == "exit-code" and outcome.exit_status == ExitCode.FAILED:
        return ExitCode.FAILED, (
            f"some documents failed (see lexi-maint status JOB); service restored"
            f" (job units: {units})"
        )
    if outcome.result == "exit-code" and outcome.exit_status == ExitCode.CONFIG:
        return ExitCode.CONFIG, f"the pipeline refused its configuration (job units: {units})"
    if outcome.result == "exit-code" and outcome.exit_status == ExitCode.UNAVAILABLE:
        return ExitCode.UNAVAILABLE, (
            "the pipeline stopped: graph store, model API or disk unavailable past outage_budget"
            " (unprocessed documents stay pending), ledger or state_dir unusable, or the LLM API"
            " refused the key or the balance ran out"
            f" (journalctl -u 'lexi-pipeline-*'; job units: {units})"
        )
    detail = f"status {outcome.exit_status}" if outcome.result == "exit-code" else outcome.result
    return ExitCode.UNAVAILABLE, f"job unit ended with {detail} (job units: {units})"
