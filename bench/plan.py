"""`make bench-plan`: the memory plan's figure for a batch against what the batch really held.

The memory plan (`lexi_maint.lifecycle.memplan`) sizes a job as

    need = runner + workers x p95(per-document worker peak) (+ the largest, ...)

from the ledger's history. A worker is forked from the runner, so its resident peak
(`peak_rss`, ru_maxrss) counts the runner's pages it still shares, about 40 MB, which the
job's cgroup holds once. Since ledger schema 5 the plan uses `peak_own` instead: ru_maxrss
less what the worker shares with other processes when its document ends.

This benchmark runs the same kind of batch as `make bench-llm` case (b) (49 documents
shaped like the seed's, batched analysis against the test server, the default 64 workers)
and, as a second case, the same documents without the LLM (provider "none", 8 workers).
While each runs it samples the process tree every 0.25 s (`bench.treemem`): the sum of PSS
(each resident page divided among the processes that map it, so the sum counts a shared page
once; from /proc/PID/smaps_rollup) and the sum of RSS, both without the graph server (the
embedded FalkorDB runs in its own unit in the daemon path and is planned apart). Then it
asks the planner, from the run's own ledger, what the same batch would need with the
configured workers, once per-worker figure:

    plan by peak_rss   the figure of schema 4 and earlier
    plan by peak_own   the figure now

Target: the plan by peak_own is not below the measured peak of the tree's PSS (the plan
must never promise less than the batch holds), and it is closer to it than the plan by
peak_rss. The ratio plan / measured is printed for both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.llm import REPO, make_batch, test_server, write_config, write_plain_config
from bench.treemem import TreeRun, run_measured
from lexi_maint.config.planner import PlannerConfig
from lexi_maint.lifecycle.memplan.model import (
    DocumentSample,
    ModelSettings,
    PendingDocument,
    estimate_batch,
)
from lexi_maint.lifecycle.memplan.planner import need
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.plan import Status

MB = 10**6
SAMPLE_SECONDS = 0.25


@dataclass(frozen=True)
class Measured:
    label: str
    workers: int
    run: TreeRun  # its pipeline's PSS and RSS sums leave the graph server out
    ledger: Path


def run_sampled(label: str, config: Path, workers: int) -> Measured:
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    run = run_measured(argv, cwd=REPO, pss=True, every=SAMPLE_SECONDS)
    if run.exit_code != 0:
        print(run.stdout[-3000:])
        raise SystemExit(f"{label}: lexi-maint exited with {run.exit_code}")
    return Measured(label, workers, run, config.parent / "state" / "ledger.sqlite3")


def history(ledger: Path) -> list[tuple[str, int, int, int]]:
    """(kind, size, peak_rss, peak_own) of every document the run finished."""
    with Ledger.open_readonly(ledger) as read:
        done = [r for r in read.documents("bench") if r.status is Status.DONE]
    rows: list[tuple[str, int, int, int]] = []
    missing: list[str] = []
    for r in done:
        if r.peak_rss is None or r.peak_own is None:
            missing.append(r.path)
        else:
            rows.append((Path(r.path).suffix.lower(), r.size, r.peak_rss, r.peak_own))
    if missing:
        raise SystemExit(f"documents without a measured peak: {missing[:3]}")
    return rows


def planned(rows: Iterable[tuple[str, int, int]], workers: int, runner: int) -> tuple[int, int]:
    """(need, per-worker figure) the planner gives the batch for these (kind, size, peak)."""
    samples = [DocumentSample(kind, size, peak) for kind, size, peak in rows]
    pending = [PendingDocument(s.kind, s.size) for s in samples]
    batch = estimate_batch(pending, samples, ModelSettings(), oom_peak=0)
    return need(batch, workers, runner), batch.per_worker


def report(case: Measured, runner: int) -> bool:
    rows = history(case.ledger)
    by_rss, rss_worker = planned(((k, s, r) for k, s, r, _ in rows), case.workers, runner)
    by_own, own_worker = planned(((k, s, o) for k, s, _, o in rows), case.workers, runner)
    run = case.run
    measured = run.peak_pipeline_pss
    print(f"{case.label}: {len(rows)} documents, {case.workers} workers, {run.seconds:.1f} s;"
          f" tree without the graph server: peak PSS {measured / MB:.1f} MB, peak RSS sum"
          f" {run.peak_pipeline_rss / MB:.1f} MB, up to {run.peak_pipeline_processes}"
          " processes")  # fmt: skip
    print(
        f"  plan by peak_rss: {runner / MB:.0f} MB runner + {case.workers} x"
        f" {rss_worker / MB:.1f} MB = {by_rss / MB:.1f} MB  ({by_rss / measured:.2f} x measured)"
    )
    print(
        f"  plan by peak_own: {runner / MB:.0f} MB runner + {case.workers} x"
        f" {own_worker / MB:.1f} MB = {by_own / MB:.1f} MB  ({by_own / measured:.2f} x measured)"
    )
    sound, tighter = by_own >= measured, by_own < by_rss
    print(
        f"  plan by peak_own >= measured: {'met' if sound else 'MISSED'};"
        f" closer than by peak_rss: {'met' if tighter else 'MISSED'}"
    )
    return sound and tighter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05, help="latency scale (default 0.05)")
    parser.add_argument("--seed", type=int, default=49)
    args = parser.parse_args()
    runner = PlannerConfig().runner
    with tempfile.TemporaryDirectory(prefix="lexi-bench-plan-") as tmp:
        base = Path(tmp)
        make_batch(base / "input", args.seed)
        with test_server(args.scale) as server:
            llm = run_sampled("LLM, batched", write_config(base / "llm", server.url, ""), 64)
        none = run_sampled("no LLM", write_plain_config(base / "plain", 8), 8)
        ok = report(llm, runner) & report(none, runner)
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
