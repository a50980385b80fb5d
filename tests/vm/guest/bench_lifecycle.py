"""Runs inside the VM: how long lexi-maint's own steps take around a batch.

For each of N runs (`lexi-maint submit cao_import --wait --reprocess`), from journal
timestamps (CLOCK_MONOTONIC, microseconds):
  A = (job unit started − daemon took the run) − lexi.service's own stop time
  B = lexi.service active again − job unit ended
Baselines measured in the same runs: lexi.service's own stop time and its own start time.
Prints the figures and writes $OUT/bench.json.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
scenarios: Any = importlib.import_module("scenarios")  # the same setup as the scenario tests

UNIT_STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
UNIT_STARTED = "39f53479d3a045ac8e11786248231fbf"
UNIT_STOPPING = "de5b426a63be47a7b6ac3eaac82e2f6f"
UNIT_STOPPED = "9d1aaa27d60140bd96365438aad20286"


def entries(since_usec: int) -> list[dict[str, Any]]:
    out = scenarios.sh("journalctl", "-b", "-o", "json", "--no-pager").stdout
    rows = []
    for line in out.splitlines():
        entry = json.loads(line)
        if int(entry["__MONOTONIC_TIMESTAMP"]) >= since_usec:
            rows.append(entry)
    return rows


def first(rows: list[dict[str, Any]], **match: str) -> int:
    for row in rows:
        if all(row.get(k) == v for k, v in match.items()):
            return int(row["__MONOTONIC_TIMESTAMP"])
    raise LookupError(f"no journal entry with {match}")


def first_unit(rows: list[dict[str, Any]], message_id: str, prefix: str) -> int:
    for row in rows:
        if row.get("MESSAGE_ID") == message_id and str(row.get("UNIT", "")).startswith(prefix):
            return int(row["__MONOTONIC_TIMESTAMP"])
    raise LookupError(f"no {message_id} entry for {prefix}")


def one_run() -> dict[str, float]:
    since = int(float(Path("/proc/uptime").read_text().split()[0]) * 1e6)
    done = scenarios.sh(scenarios.LEXI, "submit", "cao_import", "--wait", "--reprocess")
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    rows = entries(since)
    took = first(rows, LEXI_PHASE="preflight")
    stop_begin = first_unit(rows, UNIT_STOPPING, "lexi.service")
    stop_end = first_unit(rows, UNIT_STOPPED, "lexi.service")
    job_started = first_unit(rows, UNIT_STARTED, "lexi-pipeline-")
    job_ended = max(
        int(r["__MONOTONIC_TIMESTAMP"]) for r in rows
        if str(r.get("UNIT", "")).startswith("lexi-pipeline-")
        and r.get("MESSAGE_ID") in (UNIT_STOPPED, "d9b373ed55a64feb8242e02dbe79a49c",
                                    "7ad2d189f7e94e70a38c781354912448")
    )  # fmt: skip
    restart_begin = max(
        int(r["__MONOTONIC_TIMESTAMP"]) for r in rows
        if r.get("UNIT") == "lexi.service" and r.get("MESSAGE_ID") == UNIT_STARTING
    )  # fmt: skip
    service_active = max(
        int(r["__MONOTONIC_TIMESTAMP"]) for r in rows
        if r.get("UNIT") == "lexi.service" and r.get("MESSAGE_ID") == UNIT_STARTED
    )  # fmt: skip
    stop = (stop_end - stop_begin) / 1e6
    start = (service_active - restart_begin) / 1e6
    quiesce = first(rows, LEXI_PHASE="quiesce")
    stopped_logged = first(rows, MESSAGE_ID="6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c04")
    run_phase = first(rows, LEXI_PHASE="run")
    return {
        "A_part_preflight_s": (quiesce - took) / 1e6,
        "A_part_quiesce_to_stop_job_s": (stop_begin - quiesce) / 1e6,
        "A_part_leftovers_s": (stopped_logged - stop_end) / 1e6,
        "A_part_job_unit_start_s": (job_started - run_phase) / 1e6,
        "A_submit_to_job_start_minus_stop_s": (job_started - took) / 1e6 - stop,
        "B_job_end_to_service_active_s": (service_active - job_ended) / 1e6,
        "B_minus_service_own_start_s": (service_active - job_ended) / 1e6 - start,
        "baseline_service_stop_s": stop,
        "baseline_service_start_s": start,
    }


def main() -> int:
    out = scenarios.OUT
    out.mkdir(parents=True, exist_ok=True)
    setup = scenarios.setup()
    if setup["install_rc"] != 0:
        print(setup["install_output"])
        return 1
    # 1: the service leaves a worker behind that ignores SIGTERM: kill_grace is waited out
    runs = [one_run() for _ in range(3)]
    summary = {key: round(median(r[key] for r in runs), 3) for key in runs[0]}
    # 2: the same service without that worker: what every run costs when the service stops
    # cleanly (the common case)
    without_leftover()
    clean_runs = [one_run() for _ in range(3)]
    clean = {key: round(median(r[key] for r in clean_runs), 3) for key in clean_runs[0]}
    (out / "bench.json").write_text(json.dumps(
        {"runs": runs, "median": summary, "clean_runs": clean_runs, "clean_median": clean},
        indent=2))  # fmt: skip
    print(f"{'':<40} {'leftover':>9} {'clean':>9}")
    for key, value in summary.items():
        print(f"{key:<40} {value:9.3f} {clean[key]:9.3f}")
    return 0


def without_leftover() -> None:
    dropin = Path("/etc/systemd/system/lexi.service.d")
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "no-leftover.conf").write_text("[Service]\nExecStartPost=\n")
    scenarios.sh("systemctl", "daemon-reload", check=True)
    scenarios.sh("systemctl", "restart", "lexi.service", check=True)
    scenarios.sh("pkill", "-KILL", "-f", "stubborn.py")


if __name__ == "__main__":
    raise SystemExit(main())
