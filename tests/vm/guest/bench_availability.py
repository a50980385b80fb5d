"""Runs inside the VM: the same batch with quiesce = stop and quiesce = shrink, side by side.

After the scenarios' setup and a warm-up run of cao_import (the same files: the ledger's
history the plan learns from), every gunicorn worker of lexi.service gets ballast memory sized
so that the shrink job's plan must remove one worker. Then, for ROUNDS rounds, the 48-document
`big` folder is processed with `lexi-maint submit JOB --wait --reprocess` by the job
`avail_stop` (quiesce = stop) and by `avail_shrink` (quiesce = shrink), in the order
stop-shrink, shrink-stop, stop-shrink...: whatever drifts from run to run in the guest does
not always land on the same mode.

The prober runs on the host (bench/availability.py), not here: under TCG a Python prober in the
guest took 26-51 CPU seconds of the guest's 2 vCPUs per batch, a share of the batch's CPU that
the service's clients do not take on real hardware. The host reaches lexi.service through qemu's
user-mode network (tests/vm/runner.py PortForward): this script brings the NIC up and makes
gunicorn listen on all addresses. It tells the host when each run starts, when its batch ends
and when the service is healthy with 4 workers again by creating marker files in $OUT/marks/
(`<run>-<event>`): the host takes each file's mtime, which its own clock sets on the 9p write,
so the two clocks need not agree (the file holds the guest's time.time(), for checking).

Per run, here: the batch's wall time (submit to the end of --wait), the job unit's peak memory
(memory.peak), CPU seconds of the batch and the service. Writes $OUT/bench.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository copy
from tests.vm.guest import scenarios
from tests.vm.guest.prober import gunicorn_workers

ROUNDS = 3
JOBS = (("stop", "avail_stop"), ("shrink", "avail_shrink"))
ADDRESS = "10.0.2.15/24"  # qemu user-mode network's guest address: the host forward's target
BIND_DROPIN = Path("/etc/systemd/system/lexi.service.d/bench-bind.conf")
EXEC_START = "/opt/lexi-maint/venv/bin/gunicorn --workers 4 --bind 0.0.0.0:8000 app:application"
MARKS = scenarios.OUT / "marks"


def network_up() -> str:
    """Bring up the one NIC (qemu's virtio-net; nothing in the image configures it)."""
    nics: list[str] = []

    def found() -> bool:
        nics[:] = [p.name for p in Path("/sys/class/net").iterdir() if p.name != "lo"]
        return bool(nics)

    scenarios.wait_for("a network interface", found, 60)
    scenarios.sh("ip", "addr", "add", ADDRESS, "dev", nics[0], check=True)
    scenarios.sh("ip", "link", "set", nics[0], "up", check=True)
    return scenarios.sh("ip", "-brief", "address", "show", nics[0]).stdout.strip()


def listen_on_all_addresses() -> None:
    """lexi.service binds 127.0.0.1 only; for the host's prober it must listen on the NIC too.
    Takes effect at the next restart (ballast_for_one_worker restarts it)."""
    BIND_DROPIN.parent.mkdir(exist_ok=True)
    BIND_DROPIN.write_text(f"[Service]\nExecStart=\nExecStart={EXEC_START}\n")


def mark(run: int, event: str) -> None:
    """Tell the host that `event` happens now (it reads the markers' mtimes after the boot)."""
    fd = os.open(MARKS / f"{run}-{event}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, f"{time.time():.6f}\n".encode())
    finally:
        os.close(fd)


def cpu_seconds(unit: str) -> float:
    """CPU time a unit (or slice) has used so far (CPUUsageNSec)."""
    value = scenarios.show(unit, "CPUUsageNSec")
    return int(value) / 1e9 if value.isdigit() else 0.0


def one_run(run: int, mode: str, job: str) -> dict[str, Any]:
    pid = int(scenarios.show("lexi.service", "MainPID"))
    service_cpu, batch_cpu, own_cpu = cpu_seconds("lexi.service"), cpu_seconds(
        "lexi-batch.slice"), os.times()  # fmt: skip
    with scenarios.Watch(pid) as watch:
        mark(run, "started")
        started = time.monotonic()
        done = scenarios.sh(scenarios.LEXI, "submit", job, "--wait", "--reprocess", timeout=1800)
        ended = time.monotonic()
        mark(run, "ended")
        scenarios.wait_for("lexi.service healthy with 4 workers", lambda: scenarios.healthy()
                           and gunicorn_workers(int(scenarios.show("lexi.service", "MainPID")))
                           == 4, 120)  # fmt: skip
        mark(run, "settled")
    after = os.times()
    service_used = cpu_seconds("lexi.service") - service_cpu if mode == "shrink" else None
    found = re.search(rf"{job}-\d{{8}}T\d{{6}}-[0-9a-f]{{6}}", done.stdout)
    return {
        "run": run,
        "mode": mode,
        "rc": done.returncode,
        "tail": done.stdout[-300:],
        "wall_s": round(ended - started, 1),
        "job_peak_mb": watch.peak // 2**20,
        # CPU seconds on the guest's 2 vCPUs: the batch's job units, lexi.service serving the
        # host's prober (shrink mode; a restarted service's count starts again), this script's
        # own process (mostly its Watch thread)
        "batch_cpu_s": round(cpu_seconds("lexi-batch.slice") - batch_cpu, 1),
        "service_cpu_s": round(service_used, 1) if service_used is not None else None,
        "driver_cpu_s": round(after.user + after.system - own_cpu.user - own_cpu.system, 1),
        "job_caps": sorted(watch.caps),
        "workers_seen": watch.workers,
        "timeline": scenarios.timeline(found.group(0)) if found else [],
    }


def main() -> int:
    out = scenarios.OUT
    out.mkdir(parents=True, exist_ok=True)
    setup = scenarios.setup()
    record: dict[str, Any] = {"setup_install_rc": setup["install_rc"], "nic": network_up()}
    MARKS.mkdir()
    listen_on_all_addresses()
    # history for the plan (same files as the big folder's), then ballast sized from it
    warm = scenarios.sh(scenarios.LEXI, "submit", "cao_import", "--wait", timeout=900)
    record["warm_up_rc"] = warm.returncode
    scenarios.ballast_for_one_worker("avail_shrink", record)
    runs: list[dict[str, Any]] = []
    for round_ in range(ROUNDS):
        for mode, job in JOBS if round_ % 2 == 0 else JOBS[::-1]:
            runs.append(one_run(len(runs), mode, job))
            scenarios.log(f"bench run: {json.dumps(runs[-1])}")
            (out / "bench.json").write_text(json.dumps({**record, "runs": runs}, indent=2))
    record["plan_after"] = scenarios.sh(scenarios.LEXI, "plan", "avail_shrink").stdout
    (out / "bench.json").write_text(json.dumps({**record, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
