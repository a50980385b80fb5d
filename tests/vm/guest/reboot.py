"""Runs inside the VM, twice on the same disk: a reboot in the middle of a run.

Boot 1: install, start a run, then reboot at once (sysrq: no service is stopped, no daemon
gets to clean up), like a power loss. Boot 2: lexi.service starts as usual at boot; the daemon
finds the hold record from the earlier boot and marks the run interrupted; resubmitting
finishes the job. Observations go to $OUT/reboot1.json and $OUT/reboot2.json.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
scenarios: Any = importlib.import_module("scenarios")  # the same setup as the scenario tests

PHASE = Path("/var/lib/lexi-vmtest-phase")


def boot1(out: Path) -> int:
    record: dict[str, Any] = {"setup": scenarios.setup()}
    scenarios.sh("systemctl", "enable", "lexi.service", check=True)
    os.sync()  # the installation is not under test: only what lexi-maint writes during the run
    run_id = scenarios.submit("big")
    record["run_id"] = run_id
    scenarios.wait_for("documents to progress", lambda: scenarios.done_count("big") >= 2, 240)
    record["service_before"] = scenarios.show("lexi.service", "ActiveState")
    record["hold_before"] = Path("/var/lib/lexi-maintd/hold.json").exists()
    with PHASE.open("w") as marker:  # the test's own marker must survive the crash
        marker.write("2")
        marker.flush()
        os.fsync(marker.fileno())
    directory = os.open(PHASE.parent, os.O_RDONLY)
    os.fsync(directory)
    os.close(directory)
    (out / "reboot1.json").write_text(json.dumps(record))
    time.sleep(1)
    Path("/proc/sys/kernel/sysrq").write_text("1")
    Path("/proc/sysrq-trigger").write_text("b")  # immediate reboot, like pulling the plug
    time.sleep(60)
    return 1  # not reached


def boot2(out: Path) -> int:
    record: dict[str, Any] = {}
    record["service_at_boot"] = scenarios.show("lexi.service", "ActiveState")
    record["restored_wait"] = round(scenarios.wait_for(
        "the daemon to close the interrupted run",
        lambda: not Path("/var/lib/lexi-maintd/hold.json").exists(), 120), 1)  # fmt: skip
    record["list"] = scenarios.sh(scenarios.LEXI, "list").stdout
    record["last_run"] = scenarios.ledger("big").get("last_run")
    done = scenarios.sh(scenarios.LEXI, "submit", "big", "--wait", timeout=900)
    record["resume_rc"], record["resume_tail"] = done.returncode, done.stdout[-1500:]
    if done.returncode != 0:  # what the job unit and its graph server said
        redis_log = scenarios.STATE / "falkordb" / "redis.log"
        tail = redis_log.read_text(errors="replace")[-3000:] if redis_log.exists() else ""
        record["resume_tail"] += f"\n{scenarios.lexi_journal()}\n--- {redis_log}:\n{tail}"
    record["statuses"] = sorted({d["status"] for d in scenarios.ledger("big")["documents"]})
    record["service_at_end"] = scenarios.show("lexi.service", "ActiveState")
    (out / "reboot2.json").write_text(json.dumps(record))
    return 0


def main() -> int:
    out = scenarios.OUT
    out.mkdir(parents=True, exist_ok=True)
    return boot2(out) if PHASE.exists() else boot1(out)


if __name__ == "__main__":
    raise SystemExit(main())
