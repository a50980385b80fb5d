"""Runs inside the VM: the same batch with quiesce = stop and quiesce = shrink, side by side.

After the scenarios' setup and a warm-up run of cao_import (the same files: the ledger's
history the plan learns from), every gunicorn worker of lexi.service gets ballast memory sized
so that the shrink job's plan must remove one worker. Then, for ROUNDS rounds, the 48-document
`big` folder is processed with `lexi-maint submit JOB --wait --reprocess` by the job
`avail_stop` (quiesce = stop) and by `avail_shrink` (quiesce = shrink), alternating, while a
prober asks the health URL every 100 ms. Per run: failed requests and seconds of downtime
(from submit to the service healthy again), the prober's p99 latency during the batch, the
batch's wall time (submit to the end of --wait) and the job unit's peak memory (memory.peak).
Writes $OUT/bench.json.
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
from tests.vm.guest.prober import Prober, gunicorn_workers

ROUNDS = 2
JOBS = (("stop", "avail_stop"), ("shrink", "avail_shrink"))


def cpu_seconds(unit: str) -> float:
    """CPU time a unit (or slice) has used so far (CPUUsageNSec)."""
    value = scenarios.show(unit, "CPUUsageNSec")
    return int(value) / 1e9 if value.isdigit() else 0.0


def one_run(mode: str, job: str) -> dict[str, Any]:
    pid = int(scenarios.show("lexi.service", "MainPID"))
    service_cpu, batch_cpu, own_cpu = cpu_seconds("lexi.service"), cpu_seconds(
        "lexi-batch.slice"), os.times()  # fmt: skip
    with Prober() as prober, scenarios.Watch(pid) as watch:
        started = time.monotonic()
        done = scenarios.sh(scenarios.LEXI, "submit", job, "--wait", "--reprocess", timeout=1800)
        ended = time.monotonic()
        scenarios.wait_for("lexi.service healthy with 4 workers", lambda: scenarios.healthy()
                           and gunicorn_workers(int(scenarios.show("lexi.service", "MainPID")))
                           == 4, 120)  # fmt: skip
        settled = time.monotonic()
    after = os.times()
    service_used = cpu_seconds("lexi.service") - service_cpu if mode == "shrink" else None
    found = re.search(rf"{job}-\d{{8}}T\d{{6}}-[0-9a-f]{{6}}", done.stdout)
    whole = prober.summary(started, settled)
    during = prober.summary(started, ended)
    return {
        "mode": mode,
        "rc": done.returncode,
        "tail": done.stdout[-300:],
        "wall_s": round(ended - started, 1),
        "failed": whole["failed"],
        "requests": whole["requests"],
        "downtime_s": whole["downtime_s"],
        "p99_ms": during["p99_ms"],
        "p50_ms": during["p50_ms"],
        "errors": whole["errors"],
        "job_peak_mb": watch.peak // 2**20,
        # CPU seconds on the guest's 2 vCPUs: the batch's job units, lexi.service serving the
        # prober (shrink mode; a restarted service's count starts again), the prober itself
        "batch_cpu_s": round(cpu_seconds("lexi-batch.slice") - batch_cpu, 1),
        "service_cpu_s": round(service_used, 1) if service_used is not None else None,
        "prober_cpu_s": round(after.user + after.system - own_cpu.user - own_cpu.system, 1),
        "job_caps": sorted(watch.caps),
        "workers_seen": watch.workers,
        "timeline": scenarios.timeline(found.group(0)) if found else [],
    }


def main() -> int:
    out = scenarios.OUT
    out.mkdir(parents=True, exist_ok=True)
    setup = scenarios.setup()
    record: dict[str, Any] = {"setup_install_rc": setup["install_rc"]}
    # history for the plan (same files as the big folder's), then ballast sized from it
    warm = scenarios.sh(scenarios.LEXI, "submit", "cao_import", "--wait", timeout=900)
    record["warm_up_rc"] = warm.returncode
    scenarios.ballast_for_one_worker("avail_shrink", record)
    runs = []
    for _ in range(ROUNDS):
        for mode, job in JOBS:
            runs.append(one_run(mode, job))
            scenarios.log(f"bench run: {json.dumps(runs[-1])}")
            (out / "bench.json").write_text(json.dumps({**record, "runs": runs}, indent=2))
    record["plan_after"] = scenarios.sh(scenarios.LEXI, "plan", "avail_shrink").stdout
    (out / "bench.json").write_text(json.dumps({**record, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
