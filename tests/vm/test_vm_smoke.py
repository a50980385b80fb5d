"""One boot of the VM image that proves what the scenario tests rely on.

Each guest check prints ``CHECK <name> PASS|FAIL`` and is asserted by its own
test, so a failure names the capability that is missing.
"""

from __future__ import annotations

import re

import pytest

from .image import GUEST_VENV, RUNTIME_IMPORTS
from .runner import VmResult, VmRun, prepare_share

# The boot runs in a module fixture, i.e. in the first test's setup: keep the
# pytest-timeout budget above the VM timeout so the VM's own report wins.
BOOT_TIMEOUT_S = 300.0
pytestmark = [pytest.mark.vm, pytest.mark.timeout(BOOT_TIMEOUT_S + 120)]

ENTRY = f"""#!/bin/bash
set -u
PY={GUEST_VENV}/bin/python
failed=0
check() {{  # check NAME COMMAND...: run it, print CHECK NAME PASS|FAIL
    local name=$1; shift
    if "$@"; then echo "CHECK $name PASS"; else echo "CHECK $name FAIL"; failed=1; fi
}}

echo "pid1: $(cat /proc/1/comm)"
check pid1_is_systemd test "$(cat /proc/1/comm)" = systemd

echo "controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
check memory_controller grep -qw memory /sys/fs/cgroup/cgroup.controllers

systemd-run --unit=lexi-oom-probe --wait -p MemoryMax=64M -p MemorySwapMax=0 \\
    "$PY" -c 'x=bytearray(300*2**20)'
oom_rc=$?
oom_result=$(systemctl show -p Result --value lexi-oom-probe.service)
echo "oom probe: rc=$oom_rc Result=$oom_result"
check oom_probe_failed test "$oom_rc" -ne 0
check oom_kill_result test "$oom_result" = oom-kill
systemctl reset-failed lexi-oom-probe.service || true

check runtime_imports "$PY" -c 'import {", ".join(RUNTIME_IMPORTS)}'

check pystemd_dbus_active "$PY" -c '
from pystemd.systemd1 import Unit
state = Unit(b"dbus.service", _autoload=True).Unit.ActiveState
print("dbus.service ActiveState:", state)
assert state == b"active", state
'
echo "SMOKE DONE failed=$failed"
exit $failed
"""

CHECKS = (
    "pid1_is_systemd",
    "memory_controller",
    "oom_probe_failed",
    "oom_kill_result",
    "runtime_imports",
    "pystemd_dbus_active",
)


@pytest.fixture(scope="module")
def smoke(vm_run: VmRun, tmp_path_factory: pytest.TempPathFactory) -> VmResult:
    share = prepare_share(tmp_path_factory.mktemp("vm-smoke"), ENTRY)
    return vm_run(share, BOOT_TIMEOUT_S)


def _check_lines(result: VmResult) -> dict[str, str]:
    return dict(re.findall(r"^CHECK (\S+) (PASS|FAIL)$", result.output, re.MULTILINE))


def test_boot_completes(smoke: VmResult) -> None:
    assert not smoke.timed_out, smoke.describe()
    assert smoke.exit_code is not None, smoke.describe()
    assert "SMOKE DONE" in smoke.output, smoke.describe()
    assert smoke.boot_seconds is not None and smoke.boot_seconds > 0, smoke.describe()


@pytest.mark.parametrize("name", CHECKS)
def test_guest_check(smoke: VmResult, name: str) -> None:
    status = _check_lines(smoke).get(name)
    assert status == "PASS", f"guest check {name}: {status or 'not run'}\n{smoke.describe()}"


def test_oom_kill_reported_by_systemd_run(smoke: VmResult) -> None:
    assert "oom-kill" in smoke.output, smoke.describe()


def test_journal_collected(smoke: VmResult) -> None:
    assert "killed by the OOM killer" in smoke.journal, smoke.describe()
    units = {entry.get("_SYSTEMD_UNIT") for entry in smoke.journal_entries()}
    assert {"lexi-vmtest.service", "systemd-logind.service"} <= units, smoke.describe()
