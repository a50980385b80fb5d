"""`lexi-maint doctor [JOB]`: every preflight check with ✓/✗ and its reason.

Exit status 0 when every check passed, 1 when any failed. Besides the preflight checks
(shared with the daemon), doctor looks at what only bites later: whether state_dir can be
written, whether the program the job unit runs exists, and whether an API key is there
(its presence only: no request is sent).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from lexi_maint.config import Config, JobConfig
from lexi_maint.errors import LexiMaintError
from lexi_maint.lifecycle.preflight import Check, preflight_checks
from lexi_maint.lifecycle.procs import LeftoverKiller
from lexi_maint.lifecycle.sandbox import handed_api_key_file
from lexi_maint.systemd.dbus import SystemdPort
from lexi_maint.units import plural


def doctor(config: Config, job_name: str | None, out: TextIO) -> int:
    jobs = [config.job(job_name)] if job_name else list(config.jobs.values())
    systemd, dbus_problem = _connect()
    print(f"✓ configuration: {config.source} ({plural(len(config.jobs), 'job')})", file=out)
    if dbus_problem:
        print(f"✗ D-Bus access: {dbus_problem}", file=out)
    ok = dbus_problem is None
    for check in (
        check_state_dir(config.state_dir),
        check_program(config),
        check_api_key(config),
        check_metrics(config),
    ):
        print(f"{_mark(check)} {check.name}: {check.detail}", file=out)
        ok &= check.ok
    ok &= _leftovers(config, systemd, out)
    for job in jobs:
        print(f"job {job.name}:", file=out)
        for check in preflight_checks(config, job, systemd):
            if check.name == "D-Bus access" and systemd is None:
                continue
            print(f"  {_mark(check)} {check.name}: {check.detail}", file=out)
            ok &= check.ok
        ok &= _quiesce(config, job, systemd, out)
    if systemd is not None:
        systemd.close()
    return 0 if ok else 1


def _connect() -> tuple[SystemdPort | None, str | None]:
    try:
        from lexi_maint.systemd.dbus import PystemdSystemd

        return PystemdSystemd(), None
    except LexiMaintError as exc:
        return None, str(exc)


def _leftovers(config: Config, systemd: SystemdPort | None, out: TextIO) -> bool:
    unit = config.service.unit
    cgroup = f"/system.slice/{unit}"
    state = "unknown"
    if systemd is not None:
        try:
            status = systemd.status(unit)
            cgroup = status.control_group or cgroup
            state = status.active_state
        except LexiMaintError:
            pass
    killer = LeftoverKiller(config.service.extra_matchers, config.service.kill_grace)
    pids = killer.find(cgroup)
    if state == "active":
        print(f"✓ {unit}: active with {len(pids)} processes in {cgroup}", file=out)
        return True
    if pids:
        print(f"✗ leftover workers: {unit} is {state} but {pids} still run", file=out)
        return False
    print(f"✓ leftover workers: none ({unit} is {state})", file=out)
    return True


def _quiesce(config: Config, job: JobConfig, systemd: SystemdPort | None, out: TextIO) -> bool:
    """The job's quiesce decision and its memory plan, with the inputs it rests on."""
    from lexi_maint.cli.plan import decide_now

    decision = decide_now(config, job, systemd)
    mark = "✗" if decision.problem else "✓"
    print(f"  {mark} quiesce: {decision.describe()}", file=out)
    print(f"    memory plan: {decision.plan.describe()}", file=out)
    return not decision.problem


def check_state_dir(state_dir: Path) -> Check:
    """state_dir, or the nearest existing parent it will be made in, takes a new file (an
    unnamed temporary one, gone when closed: doctor leaves nothing behind)."""
    target = state_dir
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        where = "" if target == state_dir else f" (state_dir {state_dir} does not exist)"
        return Check("state directory", False, f"cannot write in {target}{where}: {exc.strerror}")
    if target != state_dir:
        return Check("state directory", True, f"{state_dir} will be created in {target}")
    return Check("state directory", True, f"{state_dir} is writable")


def check_program(config: Config) -> Check:
    """The program the daemon's job unit runs ([daemon] program) exists and is executable."""
    program = config.daemon.program
    if not program.is_file():
        return Check("job program", False, f"{program} does not exist (set [daemon] program)")
    if not os.access(program, os.X_OK):
        return Check("job program", False, f"{program} is not executable")
    return Check("job program", True, str(program))


def check_api_key(config: Config, environ: Mapping[str, str] = os.environ) -> Check:
    """An API key can be found for the model provider (read, never sent): the file the daemon
    hands to the job unit ([daemon] api_key_file, else [llm] api_key_file) where there is
    one, else where a foreground run looks (credential, [llm] api_key_file, environment)."""
    if not config.llm.enabled:
        return Check("API key", True, "not needed ([llm] provider = 'none')")
    from lexi_maint.llm.keys import CREDENTIAL_NAME, key_from_file, load_api_key

    handed = handed_api_key_file(config)
    try:
        key = key_from_file(handed) if handed else load_api_key(config.llm, environ)
    except LexiMaintError as exc:
        return Check("API key", False, str(exc))
    given = f", handed to the job unit as the credential {CREDENTIAL_NAME}" if handed else ""
    return Check("API key", True, f"found in {key.source}{given}")


def check_metrics(config: Config) -> Check:
    """[metrics] textfile_dir exists and takes a file, and prometheus_client is installed."""
    directory = config.metrics.textfile_dir
    if directory is None:
        return Check("metrics", True, "off (no [metrics] textfile_dir)")
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return Check(
            "metrics", False, "prometheus_client missing: pip install 'lexi-maint[metrics]'"
        )
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
        st = directory.stat()
    except OSError as exc:
        return Check("metrics", False, f"cannot write in {directory}: {exc.strerror}")
    if denied := _metrics_denied(config, st):
        return Check(
            "metrics", False,
            f"job user {denied} cannot write in {directory} (mode {st.st_mode & 0o7777:04o}), "
            f"where the job unit writes its run's file: e.g. chgrp {denied} {directory} && "
            f"chmod g+w {directory}",
        )  # fmt: skip
    return Check("metrics", True, f"{directory} (every {config.metrics.interval:g} s during a run)")


def _metrics_denied(config: Config, st: os.stat_result) -> str | None:
    """The first job user whose permission bits do not let it create the run's file (ACLs
    not considered; a user that does not exist is the job user check's finding)."""
    from lexi_maint.errors import OwnershipError
    from lexi_maint.lifecycle.ownership import resolve_owner

    for user in sorted({job.limits.user for job in config.jobs.values() if job.limits.user}):
        try:
            owner = resolve_owner(user)
        except OwnershipError:
            continue
        if not owner.can_create_in(st):
            return user
    return None


def _mark(check: Check) -> str:
    return "✓" if check.ok else "✗"
