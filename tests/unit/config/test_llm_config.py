from __future__ import annotations

from pathlib import Path

import pytest

from lexi_maint.config import load_config, parse_config
from lexi_maint.config.llm import LlmConfig, ModelPrice, default_workers
from lexi_maint.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
CONFIG = Path("/etc/lexi/c.toml")


def problems(raw: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, CONFIG)
    return [f"{p.key}: {p.message}" for p in info.value.problems]


def test_defaults_keep_the_embedded_stages_and_two_workers() -> None:
    config = parse_config({"jobs": {"a": {"input": "x"}}}, CONFIG)
    assert config.llm.provider == "none" and not config.llm.enabled
    assert config.job("a").workers == 2
    assert config.job("a").llm == config.llm
    assert config.llm.state_dir == Path("/var/lib/lexi-maint/llm")


def test_deepseek_defaults() -> None:
    raw = {
        "state_dir": "/srv/state",
        "llm": {"provider": "deepseek"},
        "jobs": {"a": {"input": "x"}},
    }
    config = parse_config(raw, CONFIG)
    llm = config.llm
    assert llm.enabled
    assert llm.endpoint == "https://api.deepseek.com/chat/completions"
    assert (llm.chunk_model, llm.analysis_model) == ("deepseek-chat", "deepseek-reasoner")
    assert (llm.max_concurrency, llm.document_concurrency) == (64, 64)
    assert config.job("a").workers == llm.workers == 64  # documents in flight for LLM jobs
    assert llm.cache_path == Path("/srv/state/llm/responses.sqlite3")
    assert llm.slots_dir == Path("/srv/state/llm/slots")


def test_llm_workers_are_sized_by_the_call_slots_not_the_cpus() -> None:
    slots = (1, 2, 3, 20, 64, 127, 128, 1024)
    # batched analysis: a small document has one call in flight (its window, then its batch)
    assert [default_workers(n, batched=True) for n in slots] == [1, 2, 3, 20, 64, 64, 64, 64]
    # one call per chunk: a document keeps several in flight, half as many documents do
    assert [default_workers(n, batched=False) for n in slots] == [1, 1, 2, 10, 32, 64, 64, 64]
    assert LlmConfig().workers == default_workers(LlmConfig().max_concurrency, batched=True)
    llm: dict[str, object] = {"provider": "deepseek", "max_concurrency": 20}
    assert parse_config({"llm": llm, "jobs": {"a": {"input": "x"}}}, CONFIG).job("a").workers == 20
    llm["analysis_batch_chunks"] = 1
    assert parse_config({"llm": llm, "jobs": {"a": {"input": "x"}}}, CONFIG).job("a").workers == 10
    llm["workers"] = 4  # an explicit [llm] workers wins
    assert parse_config({"llm": llm, "jobs": {"a": {"input": "x"}}}, CONFIG).job("a").workers == 4


def test_an_explicit_job_workers_wins_over_the_llm_default() -> None:
    raw = {"llm": {"provider": "deepseek"}, "jobs": {"a": {"input": "x", "workers": 3}}}
    assert parse_config(raw, CONFIG).job("a").workers == 3


def test_every_key_is_read() -> None:
    raw = {
        "llm": {
            "provider": "deepseek",
            "base_url": "http://127.0.0.1:9/v1/",
            "chunk_model": "c",
            "analysis_model": "r",
            "max_concurrency": 10,
            "document_concurrency": 50,
            "workers": 5,
            "api_key_file": "key",
            "connect_timeout": 1,
            "read_timeout": 2,
            "request_deadline": 3,
            "max_retries": 4,
            "backoff_initial": 0.5,
            "backoff_max": 8,
            "invalid_output_retries": 1,
            "chunk_max_tokens": 100,
            "analysis_max_tokens": 200,
            "chunk_response_format": "text",
            "analysis_response_format": "json_object",
            "window_chars": 5000,
            "prices": {
                "currency": "CNY",
                "offpeak_start": "00:30",
                "offpeak_end": "08:30",
                "offpeak_factor": 0.5,
                "c": {"input_cache_hit": 0.1, "input_cache_miss": 1, "output": 2},
                "r": {"input_cache_hit": 0.2, "input_cache_miss": 4, "output": 16},
            },
        },
        "jobs": {"a": {"input": "x"}},
    }
    llm = parse_config(raw, CONFIG).llm
    assert llm.endpoint == "http://127.0.0.1:9/v1/chat/completions"
    assert llm.document_concurrency == 10  # never more than the job-wide limit
    assert llm.api_key_file == Path("/etc/lexi/key")
    assert (llm.connect_timeout, llm.read_timeout, llm.request_deadline) == (1, 2, 3)
    assert (llm.retry.max_retries, llm.retry.backoff_initial, llm.retry.backoff_max) == (4, 0.5, 8)
    assert llm.retry.invalid_output_retries == 1
    assert (llm.chunk_response_format, llm.analysis_response_format) == ("text", "json_object")
    assert llm.window_chars == 5000
    prices = llm.prices
    assert (prices.currency, prices.offpeak_start, prices.offpeak_end) == ("CNY", 30, 510)
    assert prices.offpeak_factor == 0.5
    assert prices.models["r"] == ModelPrice(0.2, 4.0, 16.0)
    assert "deepseek-chat" in prices.models  # the defaults stay available


def test_problems_are_reported_with_their_dotted_path() -> None:
    found = problems(
        {
            "llm": {
                "provider": "openai",
                "base_url": "api.deepseek.com",
                "max_concurrency": 0,
                "backoff_initial": 5,
                "backoff_max": 1,
                "chunk_response_format": "yaml",
                "colour": 1,
                "prices": {"offpeak_start": "25:00", "m": {"output": 1}},
            },
            "jobs": {"a": {"input": "x"}},
        }
    )
    assert found == [
        "llm.provider: must be one of 'none', 'deepseek', got 'openai'",
        "llm.base_url: 'api.deepseek.com' is not an http(s) URL (try 'https://api.deepseek.com')",
        "llm.max_concurrency: must be between 1 and 1024, got 0",
        "llm.backoff_max: must be at least backoff_initial (1 < 5)",
        "llm.chunk_response_format: must be one of 'json_object', 'text', got 'yaml'",
        "llm.prices.offpeak_start: must be a UTC time of day as HH:MM, e.g. '16:30'",
        "llm.prices.m.input_cache_hit: missing (required): price per million tokens",
        "llm.prices.m.input_cache_miss: missing (required): price per million tokens",
        "llm.colour: unknown key",
    ]


def test_deepseek_needs_a_price_for_both_models() -> None:
    found = problems({"llm": {"provider": "deepseek", "analysis_model": "deepseek-v9"}, "jobs": {}})
    assert found == [
        "llm.analysis_model: no price for model 'deepseek-v9': add [llm.prices.deepseek-v9]"
    ]


def test_the_shipped_config_documents_the_llm_defaults() -> None:
    config = load_config(REPO / "config" / "lexi-maint.toml")
    expected = LlmConfig(state_dir=config.state_dir / "llm")
    assert config.llm == expected
