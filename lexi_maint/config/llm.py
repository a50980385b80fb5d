"""The `[llm]` section: which model API the chunk and analyze stages use, and how.

`provider = "none"` (the default) keeps the embedded stages and needs no API key;
`provider = "deepseek"` sends every document through the chunk model and the reasoning
model of an OpenAI-compatible chat-completions API (DeepSeek by default). Every key is
documented in config/lexi-maint.toml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from lexi_maint.config.table import Table

PROVIDERS = ("none", "deepseek")
RESPONSE_FORMATS = ("json_object", "text")
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
MAX_WORKERS = 64
_PRICE_KEYS = ("currency", "offpeak_start", "offpeak_end", "offpeak_factor")


@dataclass(frozen=True)
class ModelPrice:
    """Price per million tokens."""

    input_cache_hit: float
    input_cache_miss: float
    output: float  # completion tokens, reasoning included


# DeepSeek's list prices in USD (V3.2, both model names, since 2025-12): check them.
DEFAULT_MODEL_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        "deepseek-chat": ModelPrice(0.028, 0.28, 0.42),
        "deepseek-reasoner": ModelPrice(0.028, 0.28, 0.42),
    }
)


@dataclass(frozen=True)
class Prices:
    currency: str = "USD"
    models: Mapping[str, ModelPrice] = field(default_factory=lambda: DEFAULT_MODEL_PRICES)
    offpeak_start: int = 16 * 60 + 30  # minutes after midnight UTC
    offpeak_end: int = 30
    offpeak_factor: float = 1.0  # price multiplier inside the window; 1.0: no discount


@dataclass(frozen=True)
class RetrySettings:
    max_retries: int = 6  # per call, for 429/5xx/connection errors/deadline
    backoff_initial: float = 1.0  # seconds before the first retry (doubled each time)
    backoff_max: float = 60.0
    invalid_output_retries: int = 2  # blank or invalid answers asked again this often


@dataclass(frozen=True)
class LlmConfig:
    provider: str = "none"
    base_url: str = "https://api.deepseek.com"
    chunk_model: str = "deepseek-chat"
    analysis_model: str = "deepseek-reasoner"
    max_concurrency: int = 64  # calls in flight for the whole job
    document_concurrency: int = 64  # calls in flight for one document
    workers: int = 64  # a job's worker processes when it does not set `workers`: default_workers
    api_key_file: Path | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 300.0  # silence between two bytes of an answer
    request_deadline: float = 900.0  # one request from sending to the last byte
    max_response_bytes: int = 8 * 2**20  # an answer's body beyond this is refused unread
    retry: RetrySettings = field(default_factory=RetrySettings)
    chunk_max_tokens: int = 4096
    analysis_max_tokens: int = 32768
    chunk_response_format: str = "json_object"
    analysis_response_format: str = "text"
    analysis_batch_chunks: int = 64  # chunks per analysis call; 1: one call per chunk
    analysis_batch_tokens: int = 8000  # about this many tokens of chunk text per call
    window_chars: int = 24000
    prices: Prices = field(default_factory=Prices)
    # Not a key: <state_dir>/llm, filled in by lexi_maint.config (response cache, slots).
    state_dir: Path = Path("/var/lib/lexi-maint/llm")

    @property
    def enabled(self) -> bool:
        return self.provider != "none"

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @property
    def cache_path(self) -> Path:
        return self.state_dir / "responses.sqlite3"

    @property
    def slots_dir(self) -> Path:
        return self.state_dir / "slots"

    @property
    def inflight_dir(self) -> Path:
        return self.state_dir / "inflight"


def default_workers(max_concurrency: int, *, batched: bool) -> int:
    """Worker processes (one document each) that keep `max_concurrency` call slots busy.

    LLM stages wait on the network, not on the CPU, so the number of documents in flight is
    sized by the call slots, not by the CPUs. With batched analysis (the default) a small
    document keeps ONE call in flight at a time (its chunking window, then that window's
    analysis), so a pool of 64 slots needs 64 documents at once: with 32, the small
    documents that end a batch kept the pool half empty for the last 30 % of a 490-document
    run (wall 1.22x the throughput bound; with 64 workers 1.07x, bench/RESULTS.md). One call
    per chunk (`analysis_batch_chunks = 1`) keeps many calls of a document in flight: half
    as many documents suffice. Each document is one process, so a killed worker still costs
    only its own document; the memory plan (`lifecycle.memplan`) counts every worker at the
    measured peak of a document and lowers them when the job's cap does not fit.
    """
    calls_per_document = 1 if batched else 2
    return max(1, min(MAX_WORKERS, -(-max_concurrency // calls_per_document)))


def _has_credentials(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "@" in url
    return parts.username is not None or parts.password is not None


def parse_llm(top: Table) -> LlmConfig:
    d = LlmConfig()
    with top.sub("llm") as t:
        provider = t.choice("provider", PROVIDERS, d.provider)
        base_url = t.string("base_url", d.base_url)
        if _has_credentials(base_url):  # never repeat them in the message
            t.problem("base_url", "must not contain credentials (user:password@): put the API"
                      " key in api_key_file or the deepseek-api-key credential")  # fmt: skip
            base_url = d.base_url
        elif not _URL.fullmatch(base_url):
            t.problem("base_url", f"{base_url!r} is not an http(s) URL (try {d.base_url!r})")
            base_url = d.base_url
        chunk_model = _model(t, "chunk_model", d.chunk_model)
        analysis_model = _model(t, "analysis_model", d.analysis_model)
        most = t.integer("max_concurrency", d.max_concurrency, low=1, high=1024)
        per_document = t.integer("document_concurrency", most, low=1, high=1024)
        key_file = t.path("api_key_file", None) if "api_key_file" in t.names() else None
        connect = t.number("connect_timeout", d.connect_timeout, low=0.01, high=600.0)
        read = t.number("read_timeout", d.read_timeout, low=0.01, high=86400.0)
        deadline = t.number("request_deadline", d.request_deadline, low=0.01, high=86400.0)
        body_cap = t.integer("max_response_bytes", d.max_response_bytes, low=4096, high=2**30)
        retry = _retry(t)
        chunk_tokens = t.integer("chunk_max_tokens", d.chunk_max_tokens, low=16, high=2**20)
        analysis_tokens = t.integer(
            "analysis_max_tokens", d.analysis_max_tokens, low=16, high=2**20
        )
        chunk_format = t.choice("chunk_response_format", RESPONSE_FORMATS, "json_object")
        analysis_format = t.choice("analysis_response_format", RESPONSE_FORMATS, "text")
        batch_chunks = t.integer("analysis_batch_chunks", d.analysis_batch_chunks, low=1, high=256)
        batch_tokens = t.integer(
            "analysis_batch_tokens", d.analysis_batch_tokens, low=100, high=10**6
        )
        window = t.integer("window_chars", d.window_chars, low=1000, high=10**7)
        workers = t.integer(
            "workers", default_workers(most, batched=batch_chunks > 1), low=1, high=MAX_WORKERS
        )
        prices = _prices(t)
        if provider != "none":
            for key, model in (("chunk_model", chunk_model), ("analysis_model", analysis_model)):
                if model not in prices.models:
                    t.problem(key, f"no price for model {model!r}: add [llm.prices.{model}]")
    return LlmConfig(
        provider=provider,
        base_url=base_url,
        chunk_model=chunk_model,
        analysis_model=analysis_model,
        max_concurrency=most,
        document_concurrency=min(per_document, most),
        workers=workers,
        api_key_file=key_file,
        connect_timeout=connect,
        read_timeout=read,
        request_deadline=deadline,
        max_response_bytes=body_cap,
        retry=retry,
        chunk_max_tokens=chunk_tokens,
        analysis_max_tokens=analysis_tokens,
        chunk_response_format=chunk_format,
        analysis_response_format=analysis_format,
        analysis_batch_chunks=batch_chunks,
        analysis_batch_tokens=batch_tokens,
        window_chars=window,
        prices=prices,
    )


def _model(t: Table, key: str, default: str) -> str:
    name = t.string(key, default)
    if not name.strip():
        t.problem(key, "must name a model")
        return default
    return name


def _retry(t: Table) -> RetrySettings:
    d = RetrySettings()
    initial = t.number("backoff_initial", d.backoff_initial, low=0.0, high=3600.0)
    most = t.number("backoff_max", d.backoff_max, low=0.0, high=86400.0)
    if most < initial:
        t.problem("backoff_max", f"must be at least backoff_initial ({most:g} < {initial:g})")
        most = initial
    return RetrySettings(
        max_retries=t.integer("max_retries", d.max_retries, low=0, high=100),
        backoff_initial=initial,
        backoff_max=most,
        invalid_output_retries=t.integer(
            "invalid_output_retries", d.invalid_output_retries, low=0, high=10
        ),
    )


def _prices(llm: Table) -> Prices:
    d = Prices()
    with llm.sub("prices") as t:
        currency = t.string("currency", d.currency)
        start = _clock(t, "offpeak_start", d.offpeak_start)
        end = _clock(t, "offpeak_end", d.offpeak_end)
        factor = t.number("offpeak_factor", d.offpeak_factor, low=0.0, high=10.0)
        models = dict(DEFAULT_MODEL_PRICES)
        for name in t.names():
            if name not in _PRICE_KEYS:
                models[name] = _model_price(t, name)
    return Prices(currency, MappingProxyType(models), start, end, factor)


def _model_price(prices: Table, model: str) -> ModelPrice:
    with prices.sub(model) as t:
        for key in ("input_cache_hit", "input_cache_miss", "output"):
            if key not in t.names():
                t.problem(key, "missing (required): price per million tokens")
        hit = t.number("input_cache_hit", 0.0, low=0.0, high=10**6)
        miss = t.number("input_cache_miss", 0.0, low=0.0, high=10**6)
        out = t.number("output", 0.0, low=0.0, high=10**6)
    return ModelPrice(hit, miss, out)


def _clock(t: Table, key: str, default: int) -> int:
    fallback = f"{default // 60:02d}:{default % 60:02d}"
    match = _CLOCK.fullmatch(t.string(key, fallback))
    if match is None:
        t.problem(key, "must be a UTC time of day as HH:MM, e.g. '16:30'")
        return default
    return int(match[1]) * 60 + int(match[2])
