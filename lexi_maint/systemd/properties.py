"""Pure builders: the transient job unit's name and properties, from config and run.

Values are plain Python (str, int, bool, lists of tuples); `signature` is the D-Bus type
systemd expects for that property (from systemd's dbus-*.c). The D-Bus adapter encodes
them; tests compare these values directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config.service import DaemonConfig, JobLimits
from lexi_maint.state import GRAPH_UNIT_ENV

SLICE = "lexi-batch.slice"
# ProtectHome= hides these; a job path below one of them is bound back in (see `sandbox`)
HOME_DIRS = (Path("/home"), Path("/root"), Path("/run/user"))
MS_REC = 0x4000  # mount flag for BindPaths= entries: bind the whole tree below the path
EPERM = 1
GRAPH_RESTART_USEC = 1_000_000


@dataclass(frozen=True)
class UnitProperty:
    name: str
    signature: str
    value: object


@dataclass(frozen=True)
class Sandbox:
    """What the job unit may touch: it writes `state_dir` and, where they exist, the
    `optional_dirs` (the metrics textfile directory: a missing one must not keep the job from
    starting), reads `inputs`, and gets `credentials` ((name, file) pairs, LoadCredential=)
    from systemd."""

    state_dir: Path
    inputs: tuple[Path, ...] = ()
    credentials: tuple[tuple[str, Path], ...] = ()
    optional_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class PipelineRun:
    """What the job unit must do: which job, which run, how many workers."""

    job: str
    run_id: str
    config_path: Path
    workers: int
    reprocess: bool = False
    attempt: int = 1  # 1 for the first unit of a run; more after an OOM restart
    graph_unit: str = ""  # the run's graph server unit: the runner attaches to its server


@dataclass(frozen=True)
class GraphServerUnit:
    """The embedded graph server of a daemon run, in its own unit with its own caps."""

    run_id: str
    config_path: Path
    memory_high: int
    memory_max: int
    start_timeout: float  # seconds until READY=1 (a large graph replays its log first)
    user: str = ""


def unit_name(run: PipelineRun) -> str:
    return f"lexi-pipeline-{_safe(run.run_id)}-{run.attempt}.service"


def graph_unit_name(run_id: str) -> str:
    return f"lexi-graph-{_safe(run_id)}.service"


GRAPH_UNIT_PATTERN = "lexi-graph-*.service"  # every run's graph server unit


def is_job_unit(name: str) -> bool:
    """Whether a unit (or a cgroup's last component) is one of the daemon's job units."""
    return name.startswith("lexi-pipeline-") and name.endswith(".service")


def job_unit_pattern(run_id: str) -> str:
    """A glob matching every job unit of a run (one per OOM restart)."""
    return f"lexi-pipeline-{_safe(run_id)}-*.service"


def _safe(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", run_id)


def pipeline_argv(program: Path, run: PipelineRun) -> list[str]:
    argv = [
        str(program),
        "--config",
        str(run.config_path),
        "run",
        run.job,
        "--run-id",
        run.run_id,
        "--workers",
        str(run.workers),
        "--progress",
        "journal",  # per-document entries with LEXI_JOB/RUN/DOCUMENT/PHASE fields
    ]
    if run.reprocess:
        argv.append("--reprocess")
    return argv


def pipeline_properties(
    run: PipelineRun, limits: JobLimits, daemon: DaemonConfig, sandbox: Sandbox
) -> list[UnitProperty]:
    props = [
        *_capped_service(
            f"lexi-maint pipeline: job {run.job}, run {run.run_id}",
            "exec",
            pipeline_argv(daemon.program, run),
            "lexi-pipeline",
            limits.memory_high,
            limits.memory_max,
        ),
        # one OOM-killed worker ends the unit with result "oom-kill"; the daemon then
        # resumes the remaining documents with fewer workers
        UnitProperty("OOMPolicy", "s", "stop"),
        # the batch, not the web service or the daemon, is the kernel's preferred victim
        UnitProperty("OOMScoreAdjust", "i", limits.oom_score_adjust),
        UnitProperty("RuntimeMaxUSec", "t", int(limits.runtime_max * 1_000_000)),
        UnitProperty("Environment", "as", pipeline_environment(run)),
        *sandbox_properties(sandbox),
    ]
    if limits.user:
        props.append(UnitProperty("User", "s", limits.user))
    if sandbox.credentials:
        pairs = [(name, str(path)) for name, path in sandbox.credentials]
        props.append(UnitProperty("LoadCredential", "a(ss)", pairs))
    return props


def _capped_service(
    description: str,
    service_type: str,
    argv: list[str],
    identifier: str,
    memory_high: int,
    memory_max: int,
) -> list[UnitProperty]:
    """What the job unit and the graph unit share: in the batch slice, started by `argv`,
    logged under `identifier`, with their memory caps and no swap."""
    return [
        UnitProperty("Description", "s", description),
        UnitProperty("Slice", "s", SLICE),
        UnitProperty("Type", "s", service_type),
        UnitProperty("NotifyAccess", "s", "main"),
        UnitProperty("ExecStart", "a(sasb)", [(argv[0], argv, False)]),
        UnitProperty("SyslogIdentifier", "s", identifier),
        UnitProperty("MemoryAccounting", "b", True),
        UnitProperty("MemoryHigh", "t", memory_high),
        UnitProperty("MemoryMax", "t", memory_max),
        UnitProperty("MemorySwapMax", "t", 0),
    ]


def pipeline_environment(run: PipelineRun) -> list[str]:
    environment = [f"LEXI_MAINT_RUN_ID={run.run_id}"]
    if run.graph_unit:  # the runner attaches to that unit's server instead of starting one
        environment.append(f"{GRAPH_UNIT_ENV}={run.graph_unit}")
    return environment


def graph_server_argv(program: Path, config_path: Path) -> list[str]:
    return [str(program), "--config", str(config_path), "graph", "serve"]


def graph_properties(
    unit: GraphServerUnit, daemon: DaemonConfig, sandbox: Sandbox
) -> list[UnitProperty]:
    """The graph server's unit: beside the job unit in its slice, as its user and in its
    sandbox (it writes only the state directory), with the planner's caps for the graph
    alone. READY=1 once the server answers PING; systemd revives a server that died
    (Restart=on-failure) until the daemon stops the unit after the run. SIGTERM goes to
    `lexi-maint graph serve` alone (KillMode=mixed), which stops redis cleanly (fsync)."""
    props = [
        *_capped_service(
            f"lexi-maint graph server: run {unit.run_id}",
            "notify",
            graph_server_argv(daemon.program, unit.config_path),
            "lexi-graph",
            unit.memory_high,
            unit.memory_max,
        ),
        UnitProperty("Restart", "s", "on-failure"),
        UnitProperty("RestartUSec", "t", GRAPH_RESTART_USEC),
        UnitProperty("TimeoutStartUSec", "t", int(unit.start_timeout * 1_000_000)),
        UnitProperty("KillMode", "s", "mixed"),
        UnitProperty("Environment", "as", [f"LEXI_MAINT_RUN_ID={unit.run_id}"]),
        *sandbox_properties(sandbox),
    ]
    if unit.user:
        props.append(UnitProperty("User", "s", unit.user))
    return props


def sandbox_properties(sandbox: Sandbox) -> list[UnitProperty]:
    """The hardening of the unit that parses untrusted documents.

    It keeps: writing state_dir (ledger, LLM cache, the embedded FalkorDB and its Unix
    socket) and the metrics directory, reading the input, TCP and Unix sockets (the model
    API, Memgraph, journald), fork and exec (document workers, the FalkorDB server). It
    loses: every capability, every other writable path, home directories, devices, kernel
    tunables, modules and logs, the clock, the hostname, namespaces, set-uid files, realtime
    scheduling, other users' processes, other address families and the privileged system
    calls. A denied system call fails with EPERM instead of killing the process: SQLite,
    for one, tries fchown() when run as root and carries on when refused.
    """
    hidden = [p for p in (sandbox.state_dir, *sandbox.optional_dirs, *sandbox.inputs)
              if _under_home(p)]  # fmt: skip
    props = [
        UnitProperty("NoNewPrivileges", "b", True),
        UnitProperty("CapabilityBoundingSet", "t", 0),
        UnitProperty("AmbientCapabilities", "t", 0),
        UnitProperty("ProtectSystem", "s", "strict"),
        # tmpfs instead of yes when a job path lives below /home: it is bound back in
        UnitProperty("ProtectHome", "s", "tmpfs" if hidden else "yes"),
        UnitProperty("PrivateTmp", "b", True),
        UnitProperty("PrivateDevices", "b", True),
        UnitProperty("ProtectKernelTunables", "b", True),
        UnitProperty("ProtectKernelModules", "b", True),
        UnitProperty("ProtectKernelLogs", "b", True),
        UnitProperty("ProtectControlGroups", "b", True),
        UnitProperty("ProtectClock", "b", True),
        UnitProperty("ProtectHostname", "b", True),
        UnitProperty("ProtectProc", "s", "invisible"),
        UnitProperty("RestrictNamespaces", "t", 0),  # the namespaces allowed: none
        UnitProperty("RestrictSUIDSGID", "b", True),
        UnitProperty("RestrictRealtime", "b", True),
        UnitProperty("LockPersonality", "b", True),
        UnitProperty("RemoveIPC", "b", True),
        UnitProperty(
            "RestrictAddressFamilies", "(bas)", (True, ["AF_UNIX", "AF_INET", "AF_INET6"])
        ),
        UnitProperty("SystemCallArchitectures", "as", ["native"]),
        UnitProperty("SystemCallFilter", "(bas)", (True, ["@system-service"])),
        UnitProperty("SystemCallFilter", "(bas)", (False, ["@privileged", "@resources"])),
        UnitProperty("SystemCallErrorNumber", "i", EPERM),
        UnitProperty("UMask", "u", 0o077),
    ]
    # (path, whether a missing path is fine): systemd's "-" prefix, BindPaths' ignore_enoent
    writable = [(sandbox.state_dir, False), *((p, True) for p in sandbox.optional_dirs)]
    binds = [(str(p), str(p), optional, MS_REC) for p, optional in writable if p in hidden]
    read_only = [(str(p), str(p), False, MS_REC) for p in sandbox.inputs
                 if p in hidden and p != sandbox.state_dir]  # fmt: skip
    if binds:
        props.append(UnitProperty("BindPaths", "a(ssbt)", binds))
    if read_only:
        props.append(UnitProperty("BindReadOnlyPaths", "a(ssbt)", read_only))
    read_write = [("-" if optional else "") + str(p) for p, optional in writable if p not in hidden]
    if read_write:
        props.append(UnitProperty("ReadWritePaths", "as", read_write))
    visible = [str(p) for p in sandbox.inputs if not _under_home(p)]
    if visible:  # read-only anyway under ProtectSystem=strict, unless inside state_dir
        props.append(UnitProperty("ReadOnlyPaths", "as", visible))
    return props


def _under_home(path: Path) -> bool:
    return any(path == home or home in path.parents for home in HOME_DIRS)
