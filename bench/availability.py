"""`make bench-availability`: lexi.service's availability during a batch, stop vs shrink.

Boots the test VM (tests/vm: systemd 252 under qemu TCG, 2 vCPUs, 2 GiB), installs
lexi-maint, gives lexi.service's 4 gunicorn workers ballast memory so that the shrink plan
must remove one, and runs the same 48-document batch with quiesce = stop and with
quiesce = shrink, alternating, ROUNDS times each (tests/vm/guest/bench_availability.py).

The prober asking the health URL every 100 ms runs here, on the host, for the whole boot: it
reaches the guest's lexi.service through qemu's user-mode network (a forward from a free
127.0.0.1 port; the guest is otherwise isolated), so it takes none of the guest's 2 vCPUs. The
guest marks each run's start, the end of its batch and the service healthy again with marker
files in the 9p share; their mtimes, set by the host's clock, cut the prober's samples into
runs (failed requests and downtime from start to healthy again, p99 during the batch).

Prints per mode: failed requests, seconds of downtime, p99 prober latency during the batch,
batch wall time and the job's peak memory, and shrink's wall time as a ratio of stop's (target
<= 1.1; shrink's target is 0 failures).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from tests.vm.guest.prober import Prober
from tests.vm.image import ensure_image
from tests.vm.runner import PortForward, prepare_share, run_in_vm
from tests.vm.test_scenarios import IGNORE

REPO = Path(__file__).resolve().parents[1]
ENTRY = """#!/bin/bash
exec /opt/lexi-maint/venv/bin/python /mnt/host/repo/tests/vm/guest/bench_availability.py \\
    /mnt/host/repo /mnt/host/out
"""
FIGURES = ("failed", "requests", "downtime_s", "p99_ms", "wall_s", "job_peak_mb", "batch_cpu_s")
GUEST_PORT = 8000  # lexi.service's gunicorn in the guest


@dataclass(frozen=True)
class Mark:
    """One marker file of the guest: when the host saw it written, and the guest's own clock."""

    host_at: float  # the file's mtime: the host's time.time() at the 9p write
    guest_at: float  # the guest's time.time(), written into the file


def main(argv: list[str]) -> int:
    if argv:  # a kept figures file: print its report again
        return report(json.loads(Path(argv[0]).read_text()))
    image = ensure_image()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-avail-") as tmp:
        share = prepare_share(Path(tmp) / "share", ENTRY)
        shutil.copytree(REPO, share / "repo", ignore=IGNORE)
        port = free_port()
        with Prober(port=port, clock=time.time) as prober:
            result = run_in_vm(share, timeout_s=3600, image=image,
                               forward=PortForward(port, GUEST_PORT))  # fmt: skip
        path = result.out_dir / "bench.json"
        if not path.exists():
            print(result.describe())
            return 1
        guest, marks = json.loads(path.read_text()), read_marks(result.out_dir / "marks")
    kept = REPO / "bench" / "out" / f"availability-{time.strftime('%Y%m%dT%H%M%S')}.json"
    kept.parent.mkdir(exist_ok=True)
    # the raw material first: every probe and marker, to check or recut the join
    raw = {"guest": guest, "marks": {n: {e: vars(m) for e, m in run.items()}
           for n, run in marks.items()}, "probes": [vars(p) for p in prober.probes]}  # fmt: skip
    kept.with_suffix(".raw.json").write_text(json.dumps(raw))
    data = join(guest, marks, prober)
    kept.write_text(json.dumps(data, indent=2))
    print(f"every figure, with each run's daemon timeline: {kept}")
    return report(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_marks(directory: Path) -> dict[int, dict[str, Mark]]:
    """The guest's markers `<run>-<event>` by run and event."""
    marks: dict[int, dict[str, Mark]] = {}
    for path in directory.iterdir():
        run, event = path.name.split("-", 1)
        mark = Mark(path.stat().st_mtime, float(path.read_text()))
        marks.setdefault(int(run), {})[event] = mark
    return marks


def join(data: dict[str, Any], marks: dict[int, dict[str, Mark]], prober: Prober) -> dict[str, Any]:
    """The guest's runs with the host prober's figures of each run's window added: failed,
    requests, downtime and errors from start to healthy again, latencies during the batch."""
    runs = []
    for run in data["runs"]:
        mark = marks[run["run"]]
        whole = prober.summary(mark["started"].host_at, mark["settled"].host_at)
        during = prober.summary(mark["started"].host_at, mark["ended"].host_at)
        runs.append({**run, **{k: whole[k] for k in ("failed", "requests", "downtime_s", "errors")},
                     "p99_ms": during["p99_ms"], "p50_ms": during["p50_ms"]})  # fmt: skip
    # host clock minus guest clock at each marker: the guest's clock is not the host's
    offsets = sorted(m.host_at - m.guest_at for run in marks.values() for m in run.values())
    return {
        **data,
        "runs": runs,
        "clock_offset_s": [round(offsets[0], 3), round(offsets[-1], 3)] if offsets else [],
        "host_prober": {"requests": len(prober.probes), "cpu_s": round(prober.cpu_s, 1)},
    }


def report(data: dict[str, Any]) -> int:
    print("plan:", data["plan"], sep="\n")
    print("ballast:", data["ballast"])
    print(f"host prober: {data['host_prober']['requests']} requests over the boot, "
          f"{data['host_prober']['cpu_s']} s of host CPU; host clock - guest clock at the "
          f"markers: {data['clock_offset_s']} s")  # fmt: skip
    runs = data["runs"]
    print(f"{'mode':8}" + "".join(f"{f:>13}" for f in FIGURES))
    for run in runs:
        cpu = f"  service CPU {run['service_cpu_s']} s, guest driver CPU {run['driver_cpu_s']} s"
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
    # each round's own ratio: the two medians can come from rounds of different host load
    walls = {m: [r["wall_s"] for r in runs if r["mode"] == m] for m in ("stop", "shrink")}
    rounds = [f"{b / a:.2f}" for a, b in zip(walls["stop"], walls["shrink"], strict=False)]
    print(f"the same ratio per round (shrink / stop): {' '.join(rounds)} (not the target)")
    print(f"shrink failed requests, all runs: {failed} (target 0)")
    bad = [r for r in runs if r["rc"] != 0]
    for run in bad:
        print(f"run in {run['mode']} mode exited {run['rc']}: {run['tail']}")
    ok = ratio <= 1.10 and failed == 0 and not bad
    print("targets met" if ok else "targets NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
