"""Pure builders: the transient job unit's name and properties, from config and run.

Values are plain Python (str, int, bool, lists of tuples); `signature` is the D-Bus type
systemd expects for that property (from systemd's dbus-*.c). The D-Bus adapter encodes
them; tests compare these values directly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.lifecycle.config import DaemonConfig, JobLimits

SLICE = "lexi-batch.slice"


@dataclass(frozen=True)
class UnitProperty:
    name: str
    signature: str
    value: object


@dataclass(frozen=True)
class PipelineRun:
    """What the job unit must do: which job, which run, how many workers."""

    job: str
    run_id: str
    config_path: Path
    workers: int
    reprocess: bool = False
    attempt: int = 1  # 1 for the first unit of a run; more after an OOM restart


def unit_name(run: PipelineRun) -> str:
    return f"lexi-pipeline-{_safe(run.run_id)}-{run.attempt}.service"


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
    run: PipelineRun,
    limits: JobLimits,
    daemon: DaemonConfig,
    credentials: Sequence[tuple[str, Path]] = (),
) -> list[UnitProperty]:
    """`credentials`: (name, file) pairs systemd hands to the unit (LoadCredential=)."""
    argv = pipeline_argv(daemon.program, run)
    props = [
        UnitProperty("Description", "s", f"lexi-maint pipeline: job {run.job}, run {run.run_id}"),
        UnitProperty("Slice", "s", SLICE),
        UnitProperty("Type", "s", "exec"),
        UnitProperty("NotifyAccess", "s", "main"),
        UnitProperty("ExecStart", "a(sasb)", [(argv[0], argv, False)]),
        UnitProperty("SyslogIdentifier", "s", "lexi-pipeline"),
        UnitProperty("MemoryAccounting", "b", True),
        UnitProperty("MemoryHigh", "t", limits.memory_high),
        UnitProperty("MemoryMax", "t", limits.memory_max),
        UnitProperty("MemorySwapMax", "t", 0),
        # one OOM-killed worker ends the unit with result "oom-kill"; the daemon then
        # resumes the remaining documents with fewer workers
        UnitProperty("OOMPolicy", "s", "stop"),
        # the batch, not the web service or the daemon, is the kernel's preferred victim
        UnitProperty("OOMScoreAdjust", "i", limits.oom_score_adjust),
        UnitProperty("RuntimeMaxUSec", "t", int(limits.runtime_max * 1_000_000)),
        UnitProperty("Environment", "as", [f"LEXI_MAINT_RUN_ID={run.run_id}"]),
        UnitProperty("NoNewPrivileges", "b", True),
        UnitProperty("PrivateTmp", "b", True),
    ]
    if limits.user:
        props.append(UnitProperty("User", "s", limits.user))
    if credentials:
        pairs = [(name, str(path)) for name, path in credentials]
        props.append(UnitProperty("LoadCredential", "a(ss)", pairs))
    return props


def describe(props: Sequence[UnitProperty]) -> str:
    """systemd-run style text, for logs and `--dry-run`."""
    return " ".join(f"-p {p.name}={p.value!r}" for p in props)
