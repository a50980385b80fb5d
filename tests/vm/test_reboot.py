"""A reboot in the middle of a run (issue 3): two boots of one writable disk."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from .image import VmImage
from .runner import prepare_share, run_in_vm, writable_disk
from .test_scenarios import IGNORE, REPO

BOOT_TIMEOUT_S = 900.0
pytestmark = [pytest.mark.vm, pytest.mark.timeout(2 * BOOT_TIMEOUT_S + 300)]

ENTRY = """#!/bin/bash
exec /opt/lexi-maint/venv/bin/python /mnt/host/repo/tests/vm/guest/reboot.py \\
    /mnt/host/repo /mnt/host/out
"""


@pytest.fixture(scope="module")
def observed(vm_image: VmImage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("reboot")
    share = prepare_share(base / "share", ENTRY)
    shutil.copytree(REPO, share / "repo", ignore=IGNORE)
    disk = writable_disk(vm_image, base / "disk.img")
    first = run_in_vm(share, BOOT_TIMEOUT_S, image=vm_image, disk=disk)
    path1 = first.out_dir / "reboot1.json"
    if not path1.exists():
        pytest.fail(f"boot 1 wrote nothing:\n{first.describe()}", pytrace=False)
    boot1 = json.loads(path1.read_text())
    second = run_in_vm(share, BOOT_TIMEOUT_S, image=vm_image, disk=disk)
    path2 = second.out_dir / "reboot2.json"
    if not path2.exists():
        pytest.fail(f"boot 2 wrote nothing:\n{second.describe()}", pytrace=False)
    return {"boot1": boot1, "boot2": json.loads(path2.read_text()), "first": first}


def test_reboot_mid_run_marks_it_interrupted_and_the_job_resumes(observed: dict[str, Any]) -> None:
    boot1, boot2 = observed["boot1"], observed["boot2"]
    assert boot1["service_before"] == "inactive" and boot1["hold_before"] is True, boot1
    assert observed["first"].exit_code is None, "boot 1 should have ended in the reboot"
    assert boot2["service_at_boot"] in ("active", "activating"), boot2
    run_line = next(line for line in boot2["list"].splitlines() if boot1["run_id"] in line)
    assert "interrupted" in run_line and "the machine rebooted" in run_line, boot2["list"]
    assert boot2["last_run"]["status"] == "interrupted", boot2["last_run"]
    assert boot2["resume_rc"] == 0, boot2["resume_tail"]
    assert boot2["statuses"] == ["done"]
    assert boot2["service_at_end"] == "active"
