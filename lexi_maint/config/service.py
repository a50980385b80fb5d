"""Configuration of the service lexi-maint quiesces, of the daemon, and of each job's unit."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from lexi_maint.config.table import Table

UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+\.service")
GROUP_NAME = re.compile(r"[a-z_][a-z0-9_-]*\$?")
# The job unit's User= unless a job sets another (`make install` creates it via sysusers.d);
# a foreground `run` and `config check` do not require it to exist, preflight and doctor do
DEFAULT_JOB_USER = "lexi-batch"


@dataclass(frozen=True)
class ProcessMatcher:
    """Leftover workers started outside the unit: every given field must match."""

    exe: str | None = None  # exact executable path (psutil Process.exe())
    cmdline_contains: str | None = None  # substring of the joined command line
    cwd: str | None = None  # exact working directory


class Quiesce(StrEnum):
    """What a job does to the service while it runs ([jobs.NAME] quiesce)."""

    STOP = "stop"  # stop it, start it again afterwards (the default)
    SHRINK = "shrink"  # remove only the gunicorn workers the batch needs, grow them back
    AUTO = "auto"  # shrink when the memory plan fits, else stop
    NONE = "none"  # leave it alone; the batch runs beside it under its own cap


@dataclass(frozen=True)
class ServiceConfig:
    unit: str = "lexi.service"
    health_url: str | None = None
    health_timeout: float = 120.0
    stop_timeout: float = 180.0
    start_timeout: float = 180.0
    kill_grace: float = 10.0
    extra_matchers: tuple[ProcessMatcher, ...] = ()
    # shrink mode: the main process must be a master that resizes on these signals
    master_match: str = "gunicorn"  # a substring of the main process's command line
    shrink_signal: int = signal.SIGTTOU  # one worker less
    grow_signal: int = signal.SIGTTIN  # one worker more
    keep_workers: int = 1  # service workers that always keep serving
    resize_timeout: float = 60.0  # for the workers to go, or to come back


@dataclass(frozen=True)
class DaemonConfig:
    socket: Path = Path("/run/lexi-maint/api.sock")
    group: str | None = "lexi-maint"  # members may use the socket; root always may
    program: Path = Path("/opt/lexi-maint/venv/bin/lexi-maint")  # what the job unit runs
    api_key_file: Path | None = None  # handed to the job unit as credential deepseek-api-key
    poll_interval: float = 0.5  # how soon a finished job unit is noticed (B in bench)
    # the daemon's own records (which run holds the service); root's alone, apart from
    # state_dir, which a job user may own
    records_dir: Path = Path("/var/lib/lexi-maintd")


@dataclass(frozen=True)
class JobLimits:
    memory_high: int = 3 * 2**30
    memory_max: int = 4 * 2**30
    runtime_max: float = 6 * 3600.0
    user: str | None = DEFAULT_JOB_USER  # User= of the job unit; None (`user = ""`): root
    oom_restarts: int = 2
    oom_score_adjust: int = 500


def parse_service(top: Table) -> ServiceConfig:
    default = ServiceConfig()
    with top.sub("service") as t:
        unit = t.string("unit", default.unit, pattern=UNIT_NAME)
        health_url = t.string("health_url", "") or None
        if health_url and not health_url.startswith(("http://", "https://")):
            t.problem("health_url", "must start with http:// or https://")
            health_url = None
        config = ServiceConfig(
            unit=unit,
            health_url=health_url,
            health_timeout=t.duration("health_timeout", default.health_timeout),
            stop_timeout=t.duration("stop_timeout", default.stop_timeout),
            start_timeout=t.duration("start_timeout", default.start_timeout),
            kill_grace=t.duration("kill_grace", default.kill_grace),
            extra_matchers=_matchers(t),
            master_match=t.string("master_match", default.master_match) or default.master_match,
            shrink_signal=_signal(t, "shrink_signal", default.shrink_signal),
            grow_signal=_signal(t, "grow_signal", default.grow_signal),
            keep_workers=t.integer("keep_workers", default.keep_workers, low=1, high=1024),
            resize_timeout=t.duration("resize_timeout", default.resize_timeout),
        )
    return config


def _signal(t: Table, key: str, default: int) -> int:
    name = t.string(key, signal.Signals(default).name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        t.problem(key, f"{name!r} is not a signal name (e.g. SIGTTOU)")
        return default


def _matchers(service: Table) -> tuple[ProcessMatcher, ...]:
    matchers = []
    for item in service.table_list("extra_matchers"):
        with item as t:
            matcher = ProcessMatcher(
                exe=t.string("exe", "") or None,
                cmdline_contains=t.string("cmdline_contains", "") or None,
                cwd=t.string("cwd", "") or None,
            )
            if matcher.exe is None and matcher.cmdline_contains is None:
                t.problem("exe", "a matcher needs exe or cmdline_contains (never a name alone)")
                continue
        matchers.append(matcher)
    return tuple(matchers)


def parse_daemon(top: Table) -> DaemonConfig:
    default = DaemonConfig()
    with top.sub("daemon") as t:
        group = t.string("group", default.group or "", pattern=GROUP_NAME) or None
        config = DaemonConfig(
            socket=t.path("socket", default.socket) or default.socket,
            group=group,
            program=t.path("program", default.program) or default.program,
            api_key_file=t.path("api_key_file", None) if t.has("api_key_file") else None,
            poll_interval=t.duration("poll_interval", default.poll_interval),
            records_dir=t.path("records_dir", default.records_dir) or default.records_dir,
        )
    return config


def parse_limits(job: Table) -> JobLimits:
    default = JobLimits()
    with job.sub("limits") as t:
        high = t.size("memory_high", default.memory_high) or default.memory_high
        maximum = t.size("memory_max", default.memory_max) or default.memory_max
        if high > maximum:
            t.problem("memory_high", f"must not exceed memory_max ({high} > {maximum} bytes)")
        user = t.string("user", default.user or "") or None
        limits = JobLimits(
            memory_high=high,
            memory_max=maximum,
            runtime_max=t.duration("runtime_max", default.runtime_max),
            user=user,
            oom_restarts=t.integer("oom_restarts", default.oom_restarts, low=0, high=10),
            oom_score_adjust=t.integer(
                "oom_score_adjust", default.oom_score_adjust, low=-1000, high=1000
            ),
        )
    return limits
