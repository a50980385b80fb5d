"""The memory plan's need, learnt from a real run, covers what that run's processes held.

A real `lexi-maint run` (embedded stages, FalkorDB) of 32 documents with 8 workers, its
process tree sampled while it runs: the sum of PSS over the runner and its workers (each
shared page counted once; the graph server left out, as the daemon plans it in a unit of its
own). Then the planner, from the ledger that run wrote, plans the same documents again. The
plan counts each worker at its own peak (`peak_own`, without the runner's pages): if that
figure under-counted, 8 workers would not fit in what it plans.
"""

from __future__ import annotations

import pytest

from bench.treemem import run_measured
from lexi_maint.config import load_config
from lexi_maint.lifecycle.memplan.gather import memory_plan
from tests.integration.lexi_env import lexi_argv, workspace
from tests.pdfgen import cao_page_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

WORKERS = 8
DOCUMENTS = 32


def test_the_plan_from_a_real_run_covers_what_its_processes_held() -> None:
    with workspace() as ws:
        for i in range(DOCUMENTS):  # 150-300 articles each: the 8 workers overlap
            pages = (cao_page_text(n) for n in range(1, 150 + 5 * i))
            (ws.input / f"cao-{i:02d}.txt").write_text(f"CAO {i}\n\n" + "\n\n".join(pages))
        ws.write_config(workers=WORKERS)
        argv = lexi_argv(ws.config, "run", "cao_import", "--progress", "lines")
        run = run_measured(argv, pss=True, every=0.02)
        assert run.exit_code == 0, run.stdout
        peak_pss, most = run.peak_pipeline_pss, run.peak_pipeline_processes
        assert most >= 3  # the runner and workers were seen while they ran

        documents = ws.status()["documents"]
        assert len(documents) == DOCUMENTS and all(d["status"] == "done" for d in documents)
        for document in documents:  # every worker's own peak is below its resident peak
            assert 0 < document["peak_own"] < document["peak_rss"], document

        config = load_config(ws.config)
        plan = memory_plan(config, config.jobs["cao_import"], None, 2**40, reprocess=True)
        assert plan.workers == WORKERS and plan.inputs.batch.history == DOCUMENTS
        print(f"planned {plan.need / 2**20:.0f} MiB ({plan.inputs.batch.describe()},"
              f" {plan.inputs.batch.per_worker / 2**20:.1f} MiB per worker); the tree held"
              f" {peak_pss / 2**20:.0f} MiB of PSS with up to {most} processes")  # fmt: skip
        # the runner's allowance alone does not hold the tree: the workers' figure decides
        assert peak_pss > config.planner.runner
        assert plan.need >= peak_pss
