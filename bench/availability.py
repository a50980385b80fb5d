"""`make bench-availability`: lexi.service's availability during a batch, stop vs shrink.

Boots the test VM (tests/vm: systemd 252 under qemu TCG, 2 vCPUs, 2 GiB), installs
lexi-maint, gives lexi.service's 4 gunicorn workers ballast memory so that the shrink plan
must remove one, and runs the same 48-document batch with quiesce = stop and with
quiesce = shrink, alternating, ROUNDS times each (tests/vm/guest/bench_availability.py),
with a prober asking the health URL every 100 ms. Prints per mode: failed requests, seconds
of downtime, p99 prober latency during the batch, batch wall time and the job's peak memory,
and shrink's wall time as a ratio of stop's (target <= 1.1; shrink's target is 0 failures).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from tests.vm.image import ensure_image
from tests.vm.runner import prepare_share, run_in_vm
from tests.vm.test_scenarios import IGNORE

REPO = Path(__file__).resolve().parents[1]
ENTRY = """#!/bin/bash
exec /opt/lexi-maint/venv/bin/python /mnt/host/repo/tests/vm/guest/bench_availability.py \\
    /mnt/host/repo /mnt/host/out
"""
FIGURES = ("failed", "requests", "downtime_s", "p99_ms", "wall_s", "job_peak_mb", "batch_cpu_s")


def main() -> int:
    image = ensure_image()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-avail-") as tmp:
        share = prepare_share(Path(tmp) / "share", ENTRY)
        shutil.copytree(REPO, share / "repo", ignore=IGNORE)
        result = run_in_vm(share, timeout_s=3600, image=image)
        path = result.out_dir / "bench.json"
        if not path.exists():
            print(result.describe())
            return 1
        data = json.loads(path.read_text())
    kept = REPO / "bench" / "out" / f"availability-{time.strftime('%Y%m%dT%H%M%S')}.json"
    kept.parent.mkdir(exist_ok=True)
    kept.write_text(json.dumps(data, indent=2))
    print(f"every figure, with each run's daemon timeline: {kept}")
    return report(data)


def report(data: dict[str, Any]) -> int:
    print("plan:", data["plan"], sep="\n")
    print("ballast:", data["ballast"])
    runs = data["runs"]
    print(f"{'mode':8}" + "".join(f"{f:>13}" for f in FIGURES))
    for run in runs:
        cpu = f"  service CPU {run['service_cpu_s']} s, prober CPU {run['prober_cpu_s']} s"
        cpu += f"  {run['errors']}" if run["errors"] else ""
        print(f"{run['mode']:8}" + "".join(f"{run[f]:>13}" for f in FIGURES) + cpu)
    medians = {
        mode: {f: median(r[f] for r in runs if r["mode"] == mode) for f in FIGURES}
        for mode in ("stop", "shrink")
    }
    for mode, figures in medians.items():
        print(f"median {mode:8}" + "".join(f" {f}={v:g}" for f, v in figures.items()))
    ratio = medians["shrink"]["wall_s"] / medians["stop"]["wall_s"]
    failed = sum(r["failed"] for r in runs if r["mode"] == "shrink")
    print(f"shrink wall time / stop wall time: {ratio:.3f} (target <= 1.10)")
    print(f"shrink failed requests, all runs: {failed} (target 0)")
    bad = [r for r in runs if r["rc"] != 0]
    for run in bad:
        print(f"run in {run['mode']} mode exited {run['rc']}: {run['tail']}")
    ok = ratio <= 1.10 and failed == 0 and not bad
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
