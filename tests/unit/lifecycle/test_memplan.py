"""The memory planner by value: the document model, the plan, its one-line description."""

from __future__ import annotations

from dataclasses import replace

from lexi_maint.config.service import JobLimits, Quiesce
from lexi_maint.lifecycle.memplan.gather import History, added_chunks
from lexi_maint.lifecycle.memplan.model import (
    BatchEstimate,
    DocumentSample,
    ModelSettings,
    PendingDocument,
    estimate_batch,
    percentile,
    predict,
)
from lexi_maint.lifecycle.memplan.planner import PlanInputs, ServiceMemory, make_plan, need
from lexi_maint.lifecycle.quiesce import decide

MiB = 2**20
SETTINGS = ModelSettings(default_peak=200 * MiB, default_factor=4.0, min_history=3)


def pdfs(*peaks_mib: int, size: int = 1_000_000) -> list[DocumentSample]:
    return [DocumentSample(".pdf", size, p * MiB) for p in peaks_mib]


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.95) == 0
    assert percentile([5], 0.95) == 5
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([3, 1, 2], 0.5) == 2


def test_no_history_uses_the_documented_default() -> None:
    doc = PendingDocument(".txt", 10 * MiB)
    p = predict(doc, [], SETTINGS, oom_peak=999)
    assert (p.peak, p.basis) == (200 * MiB + 40 * MiB, "default")


def test_too_little_history_of_the_type_still_uses_the_default() -> None:
    doc = PendingDocument(".pdf", 1 * MiB)
    p = predict(doc, pdfs(50, 60), SETTINGS, oom_peak=999)
    assert p.basis == "default"
    # history of another type does not count
    p = predict(doc, [DocumentSample(".txt", 1, 10 * MiB)] * 5, SETTINGS, oom_peak=999)
    assert p.basis == "default"


def test_history_gives_the_p95_of_the_type() -> None:
    history = pdfs(*range(41, 61))  # 20 documents, 41..60 MiB
    p = predict(PendingDocument(".pdf", 500_000), history, SETTINGS, oom_peak=999)
    assert (p.peak, p.basis) == (59 * MiB, "history")


def test_a_larger_document_than_any_seen_is_extrapolated_on_the_steepest_slope() -> None:
    history = [
        DocumentSample(".txt", 1 * MiB, 40 * MiB),
        DocumentSample(".txt", 2 * MiB, 50 * MiB),
        DocumentSample(".txt", 4 * MiB, 60 * MiB),
    ]
    # p95 = 60 MiB; slope = max((50-40)/2, (60-40)/4) = 5 bytes per byte; 6 MiB beyond 4 MiB
    p = predict(PendingDocument(".txt", 10 * MiB), history, SETTINGS, oom_peak=999)
    assert p.peak == 60 * MiB + 5 * 6 * MiB


def test_oom_kills_teach_the_model() -> None:
    history = [*pdfs(50, 50, 50), DocumentSample(".pdf", 5 * MiB, None, killed=True)]
    # the killed document itself, and anything of its type at least as large
    killed = PendingDocument(".pdf", 1, killed_before=True)
    assert predict(killed, history, SETTINGS, 300).basis == "oom"
    assert predict(PendingDocument(".pdf", 6 * MiB), history, SETTINGS, 300).peak == 300
    # smaller documents of that type keep their history
    assert predict(PendingDocument(".pdf", 1 * MiB), history, SETTINGS, 300).peak == 50 * MiB


def test_batch_estimate_separates_documents_that_run_alone() -> None:
    history = pdfs(40, 50, 60)
    pending = [
        PendingDocument(".pdf", 1000),
        PendingDocument(".pdf", 1000),
        PendingDocument(".pdf", 1000, killed_before=True),
        PendingDocument(".txt", 1 * MiB),
    ]
    batch = estimate_batch(pending, history, SETTINGS, oom_peak=400 * MiB)
    assert batch == BatchEstimate(
        documents=4,
        history=3,
        per_worker=204 * MiB,  # the .txt by the default: 200 MiB + 4 × 1 MiB
        largest=204 * MiB,
        solo=400 * MiB,
        defaulted=1,
    )


SERVICE = ServiceMemory(
    unit="lexi.service",
    main_pid=100,
    master="python3 /venv/bin/gunicorn --workers 4 app:application",
    resizable=True,
    workers=4,
    per_worker=200 * MiB,
    current=900 * MiB,
    source="PSS",
)
BATCH = BatchEstimate(documents=312, history=312, per_worker=100 * MiB, largest=120 * MiB,
                      solo=0, defaulted=0)  # fmt: skip
INPUTS = PlanInputs(
    batch=BATCH,
    workers=4,
    runner=96 * MiB,
    graph_server=64 * MiB,
    service=SERVICE,
    available=600 * MiB,
    memory_high=3 * 2**30,
    memory_max=4 * 2**30,
    headroom=1.25,
    reserve=256 * MiB,
    keep_workers=1,
)


def test_need_is_workers_times_per_worker_plus_runner_and_graph() -> None:
    assert need(BATCH, 4, 160 * MiB) == 560 * MiB
    assert need(replace(BATCH, solo=700 * MiB), 4, 160 * MiB) == 860 * MiB


def test_plan_removes_just_enough_service_workers() -> None:
    plan = make_plan(INPUTS)
    # need 560 MiB; MemoryMax 700 MiB; + reserve 256 = 956 MiB; 600 available → 2 workers
    assert (plan.need, plan.memory_max, plan.memory_high) == (560 * MiB, 700 * MiB, 613 * MiB)
    assert (plan.remove, plan.fits, plan.workers, plan.serving) == (2, True, 4, 2)


def test_plan_fits_beside_the_service_when_memory_is_plentiful() -> None:
    plan = make_plan(replace(INPUTS, available=2 * 2**30))
    assert (plan.remove, plan.fits) == (0, True)


def test_plan_never_exceeds_the_configured_caps() -> None:
    plan = make_plan(replace(INPUTS, memory_max=650 * MiB, memory_high=500 * MiB))
    assert plan.memory_max == 650 * MiB and plan.memory_high == 500 * MiB
    assert plan.fits and plan.workers == 4


def test_plan_lowers_the_batch_workers_when_the_cap_is_too_small() -> None:
    plan = make_plan(replace(INPUTS, memory_max=400 * MiB, memory_high=350 * MiB))
    # 4 workers need 560, 3 need 460, 2 need 360 MiB <= 400
    assert (plan.workers, plan.need, plan.memory_max) == (2, 360 * MiB, 400 * MiB)
    assert plan.fits


def test_plan_keeps_workers_serving_and_says_why_it_does_not_fit() -> None:
    plan = make_plan(replace(INPUTS, available=0, keep_workers=3))
    assert not plan.fits
    assert plan.workers == 1 and plan.remove == 1
    assert "from removing 1 service workers" in plan.problem


def test_no_removal_when_the_service_is_not_a_gunicorn_master_or_not_running() -> None:
    not_gunicorn = make_plan(replace(INPUTS, service=replace(SERVICE, resizable=False)))
    assert not not_gunicorn.fits and not_gunicorn.remove == 0
    stopped = make_plan(replace(INPUTS, service=None, available=2 * 2**30))
    assert stopped.fits and stopped.remove == 0


def test_beside_mode_plans_without_removing_workers() -> None:
    plan = make_plan(INPUTS, may_shrink=False)
    assert plan.remove == 0 and not plan.fits


def test_description_names_the_decision_and_its_inputs() -> None:
    text = make_plan(INPUTS).describe()
    assert text == (
        "lexi.service: 4 workers × 200 MB PSS; batch needs 560 MB (p95 of 312 earlier"
        " documents: 100 MB per worker × 4 + 160 MB runner and graph server); available 600 MB"
        " → shrink by 2 workers, 2 keep serving; job cap MemoryMax=700M MemoryHigh=613M,"
        " 4 batch workers"
    )
    lowered = make_plan(replace(INPUTS, memory_max=400 * MiB, memory_high=350 * MiB))
    assert "2 batch workers (lowered from 4)" in lowered.describe()
    assert "does not fit: " in make_plan(INPUTS, may_shrink=False).describe()


def test_quiesce_decisions_by_mode() -> None:
    from lexi_maint.config.service import JobLimits, Quiesce
    from lexi_maint.lifecycle.quiesce import decide

    limits = JobLimits(memory_high=3 * 2**30, memory_max=4 * 2**30)
    fits = make_plan(INPUTS)
    beside = make_plan(INPUTS, may_shrink=False)
    shrink = decide(Quiesce.SHRINK, fits, beside, limits)
    assert (shrink.action, shrink.remove, shrink.problem) == (Quiesce.SHRINK, 2, "")
    assert shrink.limits(limits).memory_max == 700 * MiB and shrink.workers(4) == 4
    stop = decide(Quiesce.STOP, fits, beside, limits)
    assert (stop.action, stop.remove, stop.limits(limits)) == (Quiesce.STOP, 0, limits)
    none = decide(Quiesce.NONE, fits, beside, limits)
    assert none.action is Quiesce.NONE and "does not fit beside the service" in none.problem
    # auto: not a gunicorn master → stop, if stopping frees enough for memory_max
    other = replace(INPUTS, service=replace(SERVICE, resizable=False))
    auto = decide(Quiesce.AUTO, make_plan(other), make_plan(other, may_shrink=False), limits)
    assert auto.action is Quiesce.STOP and "not a gunicorn master" in auto.note
    assert "neither shrinking" in auto.problem  # 600 MiB + 900 MiB < 4 GiB
    roomy = replace(other, available=4 * 2**30)
    auto = decide(Quiesce.AUTO, make_plan(roomy), make_plan(roomy, may_shrink=False), limits)
    assert auto.action is Quiesce.STOP and auto.problem == ""
    assert decide(Quiesce.AUTO, fits, beside, limits).action is Quiesce.SHRINK


APART = replace(
    INPUTS, graph_apart=True, graph_memory_max=2 * 2**30, graph_chunks=8000,
    graph_server=64 * MiB, graph_supervisor=64 * MiB,
)  # fmt: skip


def test_a_graph_server_apart_has_its_own_caps_outside_the_job_units() -> None:
    plan = make_plan(replace(APART, available=2 * 2**30))
    # the job unit: 4 × 100 MiB + 96 MiB runner, no graph server: 496 MiB × 1.25 = 620 MiB
    assert (plan.need, plan.memory_max, plan.memory_high) == (496 * MiB, 620 * MiB, 543 * MiB)
    # the graph unit: (64 MiB server + 64 MiB graph serve) × 1.25 = 160 MiB, high 7/8
    assert (plan.graph.memory_max, plan.graph.memory_high) == (160 * MiB, 140 * MiB)
    assert plan.fits and plan.remove == 0
    inside = make_plan(replace(INPUTS, available=2 * 2**30))
    assert inside.graph.memory_max == 0 and inside.memory_max == 700 * MiB


def test_both_caps_must_fit_beside_the_service() -> None:
    # 620 + 160 + 256 reserve = 1036 MiB wanted: 600 available + 2 × 200 → 2 not enough
    plan = make_plan(APART)
    assert (plan.remove, plan.fits) == (3, True)  # 600 + 3 × 200 = 1200 ≥ 1036
    short = make_plan(replace(APART, keep_workers=4))  # 1 worker: 245 + 160 + 256 > 600
    assert not short.fits and "graph MemoryMax=160M" in short.problem


def test_stop_mode_counts_the_graph_units_cap_beside_the_jobs() -> None:
    limits = JobLimits(memory_high=700 * MiB, memory_max=800 * MiB)
    # 600 MiB available + 900 MiB of the service: 800M + 160M fits, 1400M + 160M does not
    plan = make_plan(APART)
    assert decide(Quiesce.STOP, plan, plan, limits).problem == ""
    big = replace(limits, memory_max=1400 * MiB)
    problem = decide(Quiesce.STOP, plan, plan, big).problem
    assert problem == "memory_max 1400M + graph MemoryMax 160M > available + the service's memory"
    # without a graph unit, stop mode leaves this to the preflight's memory check
    inside = make_plan(INPUTS)
    assert decide(Quiesce.STOP, inside, inside, replace(big, memory_max=4 * 2**30)).problem == ""


def test_the_graph_cap_never_exceeds_graph_memory_max() -> None:
    grown = replace(APART, available=8 * 2**30, graph_memory_max=150 * MiB)
    plan = make_plan(grown)  # 128 MiB expected fits under 150 MiB, without all its headroom
    assert plan.fits and plan.graph.memory_max == 150 * MiB
    too_big = make_plan(replace(grown, graph_memory_max=100 * MiB))
    assert not too_big.fits and plan.workers == 4
    assert "more than graph_memory_max 100M" in too_big.problem
    decision = decide(Quiesce.STOP, too_big, too_big, JobLimits())
    assert decision.problem == too_big.problem  # refused whatever the quiesce mode


def test_the_description_gives_the_two_caps_apart() -> None:
    text = make_plan(replace(APART, available=2 * 2**30)).describe()
    assert "100 MB per worker × 4 + 96 MB runner);" in text
    assert "job cap MemoryMax=620M MemoryHigh=543M, 4 batch workers;" in text
    assert text.endswith(
        "; graph server (its own unit): 8000 chunks → 64 MB + 64 MB graph serve,"
        " cap MemoryMax=160M MemoryHigh=140M (graph_memory_max 2G)"
    )


def test_the_chunks_a_run_adds_come_from_the_done_documents_or_the_default() -> None:
    pending = [PendingDocument(".txt", 30_000), PendingDocument(".pdf", 70_000)]
    done = History((), {}, chunks=50, chunked_bytes=100_000)  # 1 chunk per 2,000 bytes
    assert added_chunks(pending, done, 1024) == 50
    assert added_chunks(pending, History((), {}, 0), 1024) == 98  # ceil(100,000 / 1,024)
    assert added_chunks([], done, 1024) == 0


def test_a_prediction_from_size_alone_stops_at_the_streaming_ceiling() -> None:
    settings = replace(SETTINGS, ceiling=320 * MiB)
    # the default: 200 MiB + 4 x 150 MiB would be 800 MiB; a streamed file stays bounded
    huge = PendingDocument(".txt", 150 * MiB)
    assert predict(huge, [], settings, oom_peak=999).peak == 320 * MiB
    # the extrapolation: 60 MiB + 5 x (150 - 4) MiB, stopped at the ceiling
    history = [
        DocumentSample(".txt", 1 * MiB, 40 * MiB),
        DocumentSample(".txt", 2 * MiB, 50 * MiB),
        DocumentSample(".txt", 4 * MiB, 60 * MiB),
    ]
    assert predict(huge, history, settings, oom_peak=999).peak == 320 * MiB
    # measured peaks above it stay as measured, and an OOM kill still takes the whole cap
    heavy = pdfs(400, 410, 420)
    assert predict(PendingDocument(".pdf", 1), heavy, settings, oom_peak=999).peak == 420 * MiB
    assert predict(PendingDocument(".pdf", 10 * MiB), heavy, settings, 999).peak == 420 * MiB
    killed = PendingDocument(".txt", 1, killed_before=True)
    assert predict(killed, history, settings, oom_peak=999).peak == 999
