"""The LLM chunk and analyze stages, and process_document, over httpx.MockTransport."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lexi_maint.config.llm import LlmConfig, RetrySettings
from lexi_maint.config.pipeline import ChunkSettings, ParseSettings
from lexi_maint.errors import DocumentError, ErrorClass, JobStopError
from lexi_maint.graph import FakeGraphStore
from lexi_maint.llm.keys import api_key
from lexi_maint.llm.runtime import LlmRuntime
from lexi_maint.pipeline.analyze import analyze_chunk
from lexi_maint.pipeline.chunk import split_text
from lexi_maint.pipeline.contract import Chunk, Failure, ParsedDocument, SourceFile, Success, Work
from lexi_maint.pipeline.llm_analyze import LlmAnalyzeStage
from lexi_maint.pipeline.llm_chunk import LlmChunkStage
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.prompts import BATCH_HEADER, DIVISION_TASK, make_batches, window_batches
from lexi_maint.pipeline.schema import ChunkAnalysis, parse_analysis
from lexi_maint.pipeline.store import StoreStage
from lexi_maint.pipeline.worker import process_document
from tests.llm_server.responder import REASONING_MARK, LexiResponder
from tests.llm_server.server import PrefixCache, chat_completion
from tests.pdfgen import cao_page_text

TEXT = "\n\n".join(cao_page_text(n) for n in range(1, 13))
SETTINGS = ChunkSettings()
Rewrite = Callable[[dict[str, Any], dict[str, Any]], httpx.Response | None]
"""Given a request body and the server's answer (both JSON as sent), the response to send
instead, or None to send the answer."""


class Api:
    """A MockTransport answering like the test server; `rewrite` may replace an answer."""

    def __init__(self, rewrite: Rewrite | None = None) -> None:
        self.rewrite = rewrite
        self.models: list[str] = []
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.models.append(body["model"])
        self.bodies.append(body)
        answer = chat_completion(body, LexiResponder())
        replaced = self.rewrite(body, answer) if self.rewrite else None
        return replaced or httpx.Response(200, json=answer)


def runtime(
    tmp_path: Path, api: Api, *, analysis_batch_chunks: int = LlmConfig.analysis_batch_chunks,
    document_concurrency: int = LlmConfig.document_concurrency,
) -> LlmRuntime:  # fmt: skip
    config = LlmConfig(
        provider="deepseek",
        base_url="http://llm.test",
        window_chars=3000,
        state_dir=tmp_path / "llm",
        retry=RetrySettings(max_retries=1, backoff_initial=0.0, backoff_max=0.0,
                            invalid_output_retries=1),
        analysis_batch_chunks=analysis_batch_chunks,
        document_concurrency=document_concurrency,
    )  # fmt: skip
    return LlmRuntime(config, api_key("sk-x", "test"), transport=httpx.MockTransport(api))


def work() -> Work:
    source = SourceFile(Path("/in/cao.txt"), Path("/in"), "0" * 64, len(TEXT))
    return Work(source, ParsedDocument("cao", 0, TEXT, "utf-8"))


class Parsed:
    name = "parse"

    def run(self, w: Work) -> Work:
        return work()


def test_the_model_chunks_tile_the_text_and_carry_its_titles(tmp_path: Path) -> None:
    api = Api()
    stage = LlmChunkStage(SETTINGS, runtime(tmp_path, api))
    chunks = stage.run(work()).chunks
    assert "".join(c.text for c in chunks) == TEXT
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[1].heading.startswith("Artikel 2 Loon en toeslagen")
    assert chunks[0].id.endswith(":00000") and len({c.id for c in chunks}) == len(chunks)
    windows = api.models.count("deepseek-chat")
    assert windows == len(TEXT) // 3000 + 1 or windows > 1
    usage = stage.usage()
    assert usage.calls == windows and usage.prompt_tokens > 0 and usage.cost > 0


def test_invalid_boundaries_fall_back_to_the_structural_splitter_with_a_warning(
    tmp_path: Path,
) -> None:
    def bad_first_window(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response:
        if body["model"] == "deepseek-chat" and "Part 1 of" in json.dumps(body):
            answer["choices"][0]["message"]["content"] = '{"chunks": [{"start": 2}]}'
        return httpx.Response(200, json=answer)

    api = Api(bad_first_window)
    result = LlmChunkStage(SETTINGS, runtime(tmp_path, api)).run(work())
    assert "".join(c.text for c in result.chunks) == TEXT
    (warning,) = result.warnings
    assert "part 1/" in warning and "2 answers rejected" in warning
    assert "chunk 1 starts at segment 2, expected 1" in warning
    assert "used the structural splitter there" in warning
    structural = split_text(TEXT, SETTINGS)
    first = result.chunks[0]
    assert (first.start, first.end, first.heading) == (
        structural[0].start, structural[0].end, structural[0].heading)  # fmt: skip


def reference_analyses(chunks: tuple[Chunk, ...]) -> list[ChunkAnalysis]:
    """What the embedded analyzer says (the test server's responder answers with it)."""
    return [parse_analysis(c.id, analyze_chunk(c)) for c in chunks]


@pytest.mark.parametrize("batch", [1, 2, 16])
def test_analysis_gives_one_valid_analysis_per_chunk(tmp_path: Path, batch: int) -> None:
    api = Api()
    rt = runtime(tmp_path, api, analysis_batch_chunks=batch)
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    stage = LlmAnalyzeStage(rt, SETTINGS)
    analyzed = stage.run(chunked)
    assert [a.chunk_id for a in analyzed.analyses] == [c.id for c in chunked.chunks]
    assert list(analyzed.analyses) == reference_analyses(chunked.chunks)
    assert analyzed.analyses[1].amounts[0].currency == "EUR"
    usage = stage.usage()
    calls = analysis_calls(rt, chunked.chunks)
    assert usage.calls == calls == api.models.count("deepseek-reasoner")
    windows = api.models.count("deepseek-chat")
    expected = {1: len(chunked.chunks), 16: windows}  # 2: more than one call in a window
    assert calls == expected[batch] if batch in expected else calls > windows > 1
    assert usage.reasoning_tokens > 0
    cache = (tmp_path / "llm" / "responses.sqlite3").read_bytes()
    assert REASONING_MARK.encode() not in cache  # reasoning_content is never stored


@pytest.mark.parametrize("batch", [2, 16])
def test_a_window_analysis_extends_its_chunking_request_so_the_prefix_cache_serves_it(
    tmp_path: Path, batch: int
) -> None:
    api = Api()
    rt = runtime(tmp_path, api, analysis_batch_chunks=batch)
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    analyzed = LlmAnalyzeStage(rt, SETTINGS).run(chunked)
    assert list(analyzed.analyses) == reference_analyses(chunked.chunks)
    chunking = [b["messages"] for b in api.bodies if b["model"] == "deepseek-chat"]
    analysis = [b["messages"] for b in api.bodies if b["model"] == "deepseek-reasoner"]
    assert len(analysis) >= len(chunking) > 1
    for messages in analysis:
        assert messages[:2] in chunking  # byte for byte: system prompt and segments
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        division = json.loads(messages[2]["content"])["chunks"]
        assert division[0]["start"] == 1 and division[0]["title"]
    # the DeepSeek-like prefix cache of the test server, fed the requests in their order
    cache, sent, hits = PrefixCache(), 0, 0
    for messages in chunking + analysis:
        sent += sum(len(m["content"]) for m in messages) // 4
        hits += cache.hit_tokens(messages)
    window_tokens = sum(len(m[1]["content"]) for m in chunking) // 4
    assert hits > window_tokens * (len(analysis) / len(chunking)) * 0.9
    assert hits / sent > 0.5


def test_batches_respect_the_token_budget_and_keep_the_order() -> None:
    chunks = tuple(
        Chunk(f"d:{i}", i, 0, 0, "", "x" * size) for i, size in enumerate([400, 400, 4000, 40, 40])
    )
    batches = make_batches(chunks, most_chunks=16, budget_tokens=250)  # 4 characters a token
    assert [[c.index for c in b] for b in batches] == [[0, 1], [2], [3, 4]]
    assert [[c.index for c in b] for b in make_batches(chunks, 1, 10**6)] == [[i] for i in range(5)]


def analysis_calls(rt: LlmRuntime, chunks: tuple[Chunk, ...]) -> int:
    """The analysis requests of a document whose every answer passes."""
    config = rt.config
    if config.analysis_batch_chunks == 1:
        return len(chunks)
    batches, rest = window_batches(config, SETTINGS, "cao", chunks)
    inline = make_batches(rest, config.analysis_batch_chunks, config.analysis_batch_tokens)
    return len(batches) + len(inline)


def batch_request(body: dict[str, Any]) -> bool:
    if body["model"] != "deepseek-reasoner":
        return False
    task = body["messages"][-1]["content"]
    return BATCH_HEADER in task or task.startswith(DIVISION_TASK.split("{")[0])


def test_an_invalid_entry_is_asked_again_alone_not_the_whole_batch(tmp_path: Path) -> None:
    spoiled: list[str] = []

    def spoil_chunk_2(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response:
        if batch_request(body):
            message = answer["choices"][0]["message"]
            data = json.loads(message["content"])
            if "2" in data["chunks"]:
                data["chunks"]["2"]["dates"] = ["not a date"]
                spoiled.append("2")
            if "3" in data["chunks"]:
                data["chunks"].pop("3")  # and one entry missing
                spoiled.append("3")
            message["content"] = json.dumps(data)
        return httpx.Response(200, json=answer)

    api = Api(spoil_chunk_2)
    rt = runtime(tmp_path, api, analysis_batch_chunks=16)
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    analyzed = LlmAnalyzeStage(rt, SETTINGS).run(chunked)
    assert list(analyzed.analyses) == reference_analyses(chunked.chunks)
    batches = analysis_calls(rt, chunked.chunks)
    assert batches > 1 and len(spoiled) > batches  # several windows, entries 2 and 3 of each
    assert api.models.count("deepseek-reasoner") == batches + len(spoiled)  # each asked alone


def test_a_batch_whose_answers_are_all_rejected_is_asked_chunk_by_chunk(tmp_path: Path) -> None:
    def no_batches(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response:
        if batch_request(body):
            answer["choices"][0]["message"]["content"] = '{"chunks": []}'
        return httpx.Response(200, json=answer)

    api = Api(no_batches)
    rt = runtime(tmp_path, api, analysis_batch_chunks=4)
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    stage = LlmAnalyzeStage(rt, SETTINGS)
    analyzed = stage.run(chunked)
    assert list(analyzed.analyses) == reference_analyses(chunked.chunks)
    batches = analysis_calls(rt, chunked.chunks)
    # each batch asked twice (invalid_output_retries = 1), then every chunk alone
    assert stage.usage().calls == 2 * batches + len(chunked.chunks)


def test_invalid_analyses_fail_the_document_with_the_raw_reason(tmp_path: Path) -> None:
    def broken(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response:
        if body["model"] == "deepseek-reasoner":
            answer["choices"][0]["message"]["content"] = '{"section_title": 5}'
        return httpx.Response(200, json=answer)

    rt = runtime(tmp_path, Api(broken))
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    with pytest.raises(DocumentError) as info:
        LlmAnalyzeStage(rt, SETTINGS).run(chunked)
    error = info.value
    assert error.error_class is ErrorClass.LLM_INVALID_OUTPUT and not error.retryable
    assert "2 answers rejected" in error.message
    assert "schema: $.defined_terms: missing; $.dates: missing" in error.message
    assert """raw answer: '{"section_title": 5}'""" in error.message


def test_a_rejected_key_fails_the_document_and_asks_to_stop_the_job(tmp_path: Path) -> None:
    def unauthorized(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "Authentication Fails"}})

    stages = (Parsed(), LlmChunkStage(SETTINGS, runtime(tmp_path, Api(unauthorized))))
    outcome = process_document(work().source, stages)
    assert isinstance(outcome, Failure)
    assert (outcome.error_class, outcome.stop_job, outcome.retryable) == (
        ErrorClass.LLM_AUTH, True, False)  # fmt: skip


def test_the_outcome_carries_the_usage_of_both_stages(tmp_path: Path) -> None:
    rt = runtime(tmp_path, Api(), analysis_batch_chunks=1)
    chunk, analyze = LlmChunkStage(SETTINGS, rt), LlmAnalyzeStage(rt, SETTINGS)
    outcome = process_document(work().source, (Parsed(), chunk, analyze))
    assert isinstance(outcome, Success)
    assert outcome.usage == chunk.usage() + analyze.usage()
    assert outcome.usage.calls == chunk.usage().calls + outcome.chunks


def test_usage_is_reported_for_a_failed_document_too(tmp_path: Path) -> None:
    def balance_gone(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response | None:
        if body["model"] == "deepseek-reasoner":
            return httpx.Response(402, json={"error": {"message": "Insufficient Balance"}})
        return None

    rt = runtime(tmp_path, Api(balance_gone))
    outcome = process_document(
        work().source, (Parsed(), LlmChunkStage(SETTINGS, rt), LlmAnalyzeStage(rt, SETTINGS))
    )
    assert isinstance(outcome, Failure) and outcome.stop_job and outcome.retryable
    assert outcome.error_class is ErrorClass.LLM_BALANCE
    assert outcome.usage.calls > 0  # the chunking calls were paid for


def test_job_stop_errors_win_over_other_failures_of_the_same_document(tmp_path: Path) -> None:
    calls = {"n": 0}

    def mixed(body: dict[str, Any], answer: dict[str, Any]) -> httpx.Response | None:
        if body["model"] != "deepseek-reasoner":
            return None
        calls["n"] += 1
        status = 402 if calls["n"] % 2 else 400
        return httpx.Response(status, json={"error": {"message": f"e{status}"}})

    rt = runtime(tmp_path, Api(mixed), document_concurrency=64)
    chunked = LlmChunkStage(SETTINGS, rt).run(work())
    with pytest.raises(JobStopError):
        LlmAnalyzeStage(rt, SETTINGS).run(chunked)
    assert sqlite3.connect(tmp_path / "llm" / "responses.sqlite3").execute(
        "SELECT count(*) FROM answers WHERE model = 'deepseek-reasoner'"
    ).fetchone() == (0,)


def test_a_long_document_goes_through_the_llm_stages_a_window_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lexi_maint.pipeline.worker.STREAM_BYTES", 0)  # every file is long
    monkeypatch.setattr("lexi_maint.pipeline.llm_chunk.WINDOW_CHARS", 8000)
    path = tmp_path / "cao.txt"
    path.write_text(TEXT, encoding="utf-8")
    api = Api()
    rt = runtime(tmp_path, api)
    chunk, analyze, store = (
        LlmChunkStage(SETTINGS, rt),
        LlmAnalyzeStage(rt, SETTINGS),
        FakeGraphStore(),
    )
    stages = (ParseStage(ParseSettings()), chunk, analyze, StoreStage(store))
    outcome = process_document(SourceFile(path, tmp_path, "0" * 64, len(TEXT)), stages)
    assert isinstance(outcome, Success), outcome
    assert store.parts_written == -(-len(TEXT) // 8000) + 1  # windows, then the references
    rows = store.documents[str(path)].chunks
    assert "".join(row["text"] for row in rows) == TEXT  # the windows' chunks tile the text
    assert [row["start"] for row in rows[1:]] == [row["end"] for row in rows[:-1]]
    assert [row["index"] for row in rows] == list(range(outcome.chunks))
    assert store.documents[str(path)].mentions  # every window's chunks analysed
    assert outcome.usage == chunk.usage() + analyze.usage() and outcome.usage.calls > 0
    chunking = [b["messages"] for b in api.bodies if b["model"] == "deepseek-chat"]
    analysis = [b["messages"] for b in api.bodies if b["model"] == "deepseek-reasoner"]
    assert analysis and all(m[:2] in chunking for m in analysis)  # each extends its window's
