"""`make bench-systemd`: lexi-maint's own overhead around a batch, measured in the VM.

Boots the test image (tests/vm), installs lexi-maint with `make install`, runs the
cao_import job three times through the daemon with the test service's SIGTERM-ignoring
leftover worker and three times without it, and prints, from journal timestamps:
  A  time from the daemon taking the run to the job unit starting, minus lexi.service's own
     stop time (target <= 1 s)
  B  time from the job unit ending to lexi.service active again (target <= 1 s), and B minus
     the service's own start time
with the service's own stop and start times as the baseline of the same runs. The guest is
emulated (qemu TCG, about 12x slower than this host for Python), so these are upper bounds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from tests.vm.image import ensure_image
from tests.vm.runner import prepare_share, run_in_vm
from tests.vm.test_scenarios import IGNORE

REPO = Path(__file__).resolve().parents[1]
ENTRY = """#!/bin/bash
exec /opt/lexi-maint/venv/bin/python /mnt/host/repo/tests/vm/guest/bench_lifecycle.py \\
    /mnt/host/repo /mnt/host/out
"""


def main() -> int:
    image = ensure_image()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-vm-") as tmp:
        share = prepare_share(Path(tmp) / "share", ENTRY)
        shutil.copytree(REPO, share / "repo", ignore=IGNORE)
        result = run_in_vm(share, timeout_s=1200, image=image)
        print(result.output[-3000:])
        path = result.out_dir / "bench.json"
        if not path.exists():
            print(result.describe())
            return 1
        data = json.loads(path.read_text())
    for label, median in (("with a SIGTERM-ignoring leftover", data["median"]),
                          ("service stops cleanly", data["clean_median"])):  # fmt: skip
        a = median["A_submit_to_job_start_minus_stop_s"]
        b = median["B_job_end_to_service_active_s"]
        print(f"{label}:")
        print(f"  A = {a:.3f} s (target <= 1 s); ratio to the service's own stop time "
              f"{a / median['baseline_service_stop_s']:.2f}")  # fmt: skip
        print(f"  B = {b:.3f} s (target <= 1 s); ratio to the service's own start time "
              f"{b / median['baseline_service_start_s']:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
