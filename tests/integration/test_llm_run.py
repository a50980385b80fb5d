"""`lexi-maint run` with `[llm] provider = "deepseek"` against the test server, end to end."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from lexi_maint.llm.keys import REDACTED
from tests.integration.lexi_env import SAMPLES, Workspace, copy_samples, lexi_argv, workspace
from tests.llm_server import API_KEY, Call, FakeLlmServer, LatencyModel

pytestmark = pytest.mark.integration

CHUNK, REASONER = "deepseek-chat", "deepseek-reasoner"


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)


@pytest.fixture()
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(echo_auth=True) as s:
        yield s


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as w:
        yield w


def configure(
    ws: Workspace, server: FakeLlmServer, *, key: str = API_KEY, mode: int = 0o600,
    workers: int | None = 2, llm: str = "",
) -> None:  # fmt: skip
    key_file = ws.root / "deepseek.key"
    key_file.write_text(key + "\n")
    key_file.chmod(mode)
    ws.write_config(
        workers=workers,
        extra=(
            f'\n[llm]\nprovider = "deepseek"\nbase_url = "{server.url}"\n'
            f'api_key_file = "{key_file}"\nbackoff_initial = 0.01\nbackoff_max = 0.05\n'
            f"max_retries = 2\nrequest_deadline = 10\n{llm}"
        ),
    )


def status(ws: Workspace) -> dict[str, Any]:
    return ws.status("cao_import")


def documents(ws: Workspace) -> dict[str, dict[str, Any]]:
    return {Path(d["path"]).name: d for d in status(ws)["documents"]}


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    give_up = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < give_up, "condition not met in time"
        time.sleep(0.02)


def test_the_samples_go_through_both_llm_stages(ws: Workspace, server: FakeLlmServer) -> None:
    names = [p.name for p in copy_samples(ws.input)]
    configure(ws, server)
    first = ws.cli("run", "cao_import", "--progress", "lines")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "result: all documents done" in first.stdout
    assert "  LLM: " in first.stdout and " USD" in first.stdout
    docs = documents(ws)
    assert sorted(docs) == sorted(names)
    assert all(d["status"] == "done" for d in docs.values())
    assert not any("splitter" in str(d["warnings"]) for d in docs.values())  # no fallback
    chunks = sum(int(str(d["chunks"])) for d in docs.values())
    assert server.count(CHUNK) == len(names)  # one window each: the samples are short
    batches = sum(-(-int(str(d["chunks"])) // 16) for d in docs.values())
    assert batches <= server.count(REASONER) < chunks  # chunks analysed in batches of <= 16
    for d in docs.values():
        usage = d["llm"]
        assert isinstance(usage, dict)
        assert 2 <= usage["calls"] <= 1 + int(str(d["chunks"]))
        assert usage["reasoning_tokens"] > 0 and usage["cost"] > 0
    assert sum(d["llm"]["calls"] for d in docs.values()) == server.count()
    run_usage = status(ws)["last_run"]["llm"]
    assert run_usage["calls"] == server.count() and run_usage["cached_answers"] == 0
    assert ws.graph_stats().node_count("Chunk") == chunks
    assert "LLM, last run:" in ws.cli("status", "cao_import").stdout

    answered = len(server.answered_keys())
    again = ws.cli("run", "cao_import", "--reprocess")
    assert again.returncode == 0, again.stdout + again.stderr
    # Every answer came from the response cache: the server answered nothing new. (The server
    # records a call when its handler ends, so a request abandoned in the first run can show
    # up in its raw count late; answered calls are what is paid for.)
    assert len(server.answered_keys()) == answered
    cached = status(ws)["last_run"]["llm"]
    assert (cached["calls"], cached["cached_answers"], cached["cost"]) == (0, run_usage["calls"], 0)
    assert ws.graph_stats().node_count("Chunk") == chunks


def test_invalid_chunk_boundaries_fall_back_to_the_splitter_with_a_warning(
    ws: Workspace, server: FakeLlmServer
) -> None:
    (ws.input / "cao.txt").write_text(
        "Artikel 1 Loon\nHet loon is € 2.000,00.\n\nArtikel 2 Verlof\nZie artikel 1.\n"
    )
    configure(ws, server)
    server.inject("content", times=3, model=CHUNK, content='{"chunks": [{"start": 2}]}')
    result = ws.cli("run", "cao_import")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = documents(ws)["cao.txt"]
    assert doc["status"] == "done" and doc["chunks"] == 1  # what the structural splitter makes
    warnings = doc["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    warning = str(warnings[0])
    assert "3 answers rejected" in warning and "expected 1" in warning
    assert "used the structural splitter there" in warning
    assert server.count(CHUNK) == 3


def test_no_balance_stops_the_job_and_a_later_run_finishes_it(
    ws: Workspace, server: FakeLlmServer
) -> None:
    copy_samples(ws.input, copies=3)
    configure(ws, server)
    server.inject("402", model=REASONER)
    stopped = ws.cli("run", "cao_import", "--progress", "lines")
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "job stopped" in stopped.stdout and "insufficient balance" in stopped.stdout
    docs = documents(ws)
    counts = {s: sum(1 for d in docs.values() if d["status"] == s) for s in ("done", "failed")}
    assert counts["failed"] == 0
    pending = [d for d in docs.values() if d["status"] == "pending"]
    assert len(pending) == 18 - counts["done"] >= 16
    reasons = [d["error"]["class"] for d in pending if d["error"]]
    assert reasons == ["llm_balance"]

    resumed = ws.cli("run", "cao_import")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert all(d["status"] == "done" for d in documents(ws).values())


def test_a_rejected_key_fails_the_job_at_once(ws: Workspace, server: FakeLlmServer) -> None:
    copy_samples(ws.input, copies=3)
    configure(ws, server, key="sk-revoked-key-0000")
    result = ws.cli("run", "cao_import", "--progress", "lines")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the API key was rejected" in result.stdout
    docs = documents(ws).values()
    assert [d["error"]["class"] for d in docs if d["status"] == "failed"] == ["llm_auth"]
    assert sum(1 for d in docs if d["status"] == "pending") == 17
    assert server.count() <= 2  # one call per worker at most: nothing more was tried


def test_the_api_key_stays_out_of_processes_logs_ledger_and_cache(
    ws: Workspace, server: FakeLlmServer
) -> None:
    copy_samples(ws.input, copies=2)
    server.latency = LatencyModel.parse("fixed:0.02")
    configure(ws, server)
    server.inject("400", model=REASONER)  # the server echoes the Authorization header
    proc = subprocess.Popen(
        lexi_argv(ws.config, "-v", "run", "cao_import", "--progress", "lines"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ws.root,
    )  # fmt: skip
    seen = 0
    try:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            for p in [root, *root.children(recursive=True)]:
                try:
                    visible = " ".join(p.cmdline()) + " ".join(p.environ().values())
                except psutil.Error:
                    continue
                assert API_KEY not in visible, f"key visible in process {p.pid}"
                seen += 1
            time.sleep(0.02)
    finally:
        out, err = proc.communicate(timeout=120)
    assert seen > 3 and proc.returncode == 1, out + err
    assert API_KEY not in out + err
    assert "INFO" in err  # verbose logging was on
    failed = [d for d in documents(ws).values() if d["status"] == "failed"]
    assert len(failed) == 1
    message = failed[0]["error"]["message"]
    assert failed[0]["error"]["class"] == "llm_bad_request"
    assert REDACTED in message
    for path in ws.state.rglob("*"):
        if path.is_file() and path.suffix not in (".sock",):
            assert API_KEY.encode() not in path.read_bytes(), path


def answered(server: FakeLlmServer) -> list[Call]:
    return [c for c in server.calls() if c.answered]


def journalled_calls(cache_path: Path) -> int:
    with sqlite3.connect(cache_path) as db:
        return int(db.execute("SELECT total(calls) FROM spend").fetchone()[0])


def test_a_killed_run_pays_nothing_twice_and_loses_no_spend(
    ws: Workspace, server: FakeLlmServer
) -> None:
    texts = sorted(p for p in SAMPLES.iterdir() if p.suffix == ".txt")
    for i in range(3):  # distinct documents: each pays for its own calls
        for source in texts:
            (ws.input / f"c{i}-{source.name}").write_text(f"Kopie {i}\n\n{source.read_text()}")
    server.latency = LatencyModel.parse("fixed:0.2")
    configure(ws, server, llm="analysis_batch_chunks = 1\n")
    proc = subprocess.Popen(lexi_argv(ws.config, "run", "cao_import"), stdout=subprocess.DEVNULL)
    tree = psutil.Process(proc.pid)
    # analyses in flight: their document was answered its chunking, so it has spent
    wait_until(lambda: len(answered(server)) >= 10 and server.waiting(REASONER) > 0)
    # Hold the answers back and wait until every answer already sent has been received and
    # journalled, then kill the whole run while requests are waiting: the kill catches
    # attempts in the middle, and no answer is on its way at that moment (an answer killed
    # on the wire cannot be counted by anyone but the provider).
    server.hold()
    cache_path = ws.state / "llm" / "responses.sqlite3"

    def all_received() -> bool:
        before = len(answered(server))
        time.sleep(0.3)  # an answer that passed the gate before hold() is sent by now
        now = len(answered(server))
        return now == before == journalled_calls(cache_path) and server.waiting(REASONER) > 0

    wait_until(all_received)
    settled = len(answered(server))
    children = tree.children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive
    server.release()
    answered_first = server.answered_keys()
    with sqlite3.connect(cache_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        cached = {row[0] for row in db.execute("SELECT key FROM answers")}
    assert cached and cached <= answered_first  # only answers that were really given

    calls_before = len(server.calls())
    rerun = ws.cli("run", "cao_import")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "interrupted by an earlier run" in rerun.stdout  # attempts were killed mid-way
    asked_again = {c.key for c in server.calls()[calls_before:]}
    assert not asked_again & cached  # nothing already answered was paid for again
    assert all(d["status"] == "done" for d in documents(ws).values())

    # What the server billed, over both runs, is what lexi-maint counts: per job ...
    billed = answered(server)
    total = status(ws)["llm"]
    assert isinstance(total, dict)
    assert total["calls"] == len(billed) > settled
    assert total["prompt_tokens"] == sum(c.prompt_tokens for c in billed)
    assert total["completion_tokens"] == sum(c.completion_tokens for c in billed)
    assert total["cache_hit_tokens"] == sum(c.cache_hit_tokens for c in billed)
    # ... and per run: the killed run keeps what its killed workers were answered
    with sqlite3.connect(ws.state / "ledger.sqlite3") as db:
        runs = db.execute("SELECT status, llm_calls FROM runs ORDER BY started_at").fetchall()
    assert [status for status, _ in runs] == ["interrupted", "finished"]
    assert runs[0][1] == settled and runs[0][1] + runs[1][1] == len(billed)
    last = status(ws)["last_run"]["llm"]
    assert last["cached_answers"] > 0 and last["reused_cost"] > 0
    assert "reused from cache:" in rerun.stdout


def test_identical_requests_in_flight_at_once_share_one_call(
    ws: Workspace, server: FakeLlmServer
) -> None:
    source = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".txt")
    for i in range(4):  # the same text four times: every request of one is a request of all
        shutil.copyfile(source, ws.input / f"copy-{i}.txt")
    server.latency = LatencyModel.parse("fixed:0.3")
    configure(ws, server, workers=4)
    result = ws.cli("run", "cao_import", "--progress", "lines")
    assert result.returncode == 0, result.stdout + result.stderr
    keys = [c.key for c in answered(server)]
    assert keys and len(keys) == len(set(keys))  # no request was paid for twice
    docs = documents(ws).values()
    assert sum(d["llm"]["calls"] for d in docs) == len(keys)
    assert sum(d["llm"]["cached_answers"] for d in docs) == 3 * len(keys)


@pytest.mark.parametrize(
    ("mode", "in_flight"),
    [("", 20), ("analysis_batch_chunks = 1\n", 10)],
    ids=["batched-one-call-per-small-document", "per-chunk-several-calls-per-document"],
)
def test_without_workers_set_the_call_slots_decide_the_documents_in_flight(
    ws: Workspace, server: FakeLlmServer, mode: str, in_flight: int
) -> None:
    source = next(p for p in sorted(SAMPLES.iterdir()) if p.suffix == ".txt")
    for i in range(24):  # distinct small documents: one chunking window each
        (ws.input / f"d{i:02d}.txt").write_text(f"Kopie {i}\n\n{source.read_text()}")
    configure(ws, server, workers=None, llm=f"max_concurrency = 20\n{mode}")
    server.hold()  # every request waits: what is in flight is what the runner started
    proc = subprocess.Popen(lexi_argv(ws.config, "run", "cao_import"), stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: server.waiting(CHUNK) >= in_flight)
        time.sleep(0.5)  # one more document would have asked by now
        # batched: a small document has one call out at a time, so 20 slots take 20
        # documents; one call per chunk: a document has several, 20 / 2 documents
        assert server.waiting() == in_flight
        runner = psutil.Process(proc.pid)
        workers = [c for c in runner.children() if c.cmdline() == runner.cmdline()]
        assert len(workers) == in_flight
        server.release()
        assert proc.wait(timeout=120) == 0
    finally:
        server.release()
        if proc.poll() is None:  # a failed check must not leave the run behind
            proc.terminate()
            proc.wait(timeout=60)
    docs = documents(ws).values()
    assert len(docs) == 24 and all(d["status"] == "done" for d in docs)


def test_a_missing_key_stops_before_any_document(ws: Workspace, server: FakeLlmServer) -> None:
    copy_samples(ws.input)
    configure(ws, server)
    (ws.root / "deepseek.key").unlink()
    result = ws.cli("run", "cao_import")
    assert result.returncode == 2
    assert "cannot read key file" in result.stderr and "Traceback" not in result.stderr
    assert server.count() == 0


def test_a_key_file_others_can_read_is_refused(ws: Workspace, server: FakeLlmServer) -> None:
    copy_samples(ws.input)
    configure(ws, server, mode=0o644)
    result = ws.cli("run", "cao_import")
    assert result.returncode == 2
    assert "mode 0644" in result.stderr and "chmod 600" in result.stderr
    assert API_KEY not in result.stderr and server.count() == 0
