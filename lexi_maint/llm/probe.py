"""Preflight of the model API: is it reachable, does it take the key, does it offer the models?

`probe(config, key)` asks `GET {base_url}/models` (OpenAI-compatible; DeepSeek answers it
for a valid key and charges nothing) within one overall deadline, and returns a line for
the operator or raises `LlmProbeError`, whose `problem` says what went wrong:

    unreachable     DNS failure, connection refused, reset or timed out, no route
    tls             the TLS handshake failed (certificate not trusted, not a TLS port)
    timeout         no complete answer within the deadline (a trickle of bytes included)
    key_rejected    401 or 403
    no_balance      402
    unknown_model   the listing lacks a model the configuration names
    http_error      any other status, or a 200 whose body is not a model list

Only the listing is fetched: no completion is requested, so no token is spent. Every message
passes through `Secret.redact`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import httpx

from lexi_maint.config.llm import LlmConfig
from lexi_maint.errors import LlmError
from lexi_maint.llm.client import api_message
from lexi_maint.secretfile import Secret

DEADLINE = 15.0  # seconds for the whole probe: connect, TLS, request and answer


class Problem(StrEnum):
    UNREACHABLE = "unreachable"
    TLS = "tls"
    TIMEOUT = "timeout"
    KEY_REJECTED = "key_rejected"
    NO_BALANCE = "no_balance"
    UNKNOWN_MODEL = "unknown_model"
    HTTP_ERROR = "http_error"


class LlmProbeError(LlmError):
    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class ProbeTarget:
    """What is probed: the listing's URL and the models the job will ask for."""

    base_url: str
    models: tuple[str, ...]
    connect_timeout: float

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + "/models"

    @classmethod
    def of(cls, config: LlmConfig) -> ProbeTarget:
        models = tuple(dict.fromkeys((config.chunk_model, config.analysis_model)))
        return cls(config.base_url, models, config.connect_timeout)


def probe(
    config: LlmConfig,
    key: Secret,
    *,
    deadline: float = DEADLINE,
    ssl_context: ssl.SSLContext | None = None,
) -> str:
    """One `GET /models`; the operator's line on success, else `LlmProbeError`."""
    target = ProbeTarget.of(config)
    status, body = fetch_listing(target, key, deadline=deadline, ssl_context=ssl_context)
    listed = interpret(status, body, target, key.redact, key.source)
    return (
        f"{target.base_url} accepts the key ({key.source}) and offers"
        f" {', '.join(target.models)} ({len(listed)} models listed)"
    )


def fetch_listing(
    target: ProbeTarget,
    key: Secret,
    *,
    deadline: float = DEADLINE,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """The listing's status and body; `LlmProbeError` when no answer came (no status then)."""
    return asyncio.run(_fetch(target, key, deadline, ssl_context))


async def _fetch(
    target: ProbeTarget, key: Secret, deadline: float, ssl_context: ssl.SSLContext | None
) -> tuple[int, bytes]:
    timeout = httpx.Timeout(connect=min(target.connect_timeout, deadline), read=deadline,
                            write=deadline, pool=deadline)  # fmt: skip
    headers = {"Authorization": f"Bearer {key.reveal()}", "Accept": "application/json"}
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
    try:
        async with (
            asyncio.timeout(deadline),
            httpx.AsyncClient(headers=headers, timeout=timeout, verify=verify) as client,
        ):
            response = await client.get(target.url)
            return response.status_code, response.content
    except TimeoutError:
        raise LlmProbeError(
            Problem.TIMEOUT, f"{target.url} gave no complete answer within {deadline:g} s"
        ) from None
    except httpx.ConnectTimeout:
        raise LlmProbeError(
            Problem.UNREACHABLE,
            f"cannot reach {_host(target)}: no connection within"
            f" {min(target.connect_timeout, deadline):g} s ([llm] connect_timeout)",
        ) from None
    except httpx.TimeoutException as exc:
        raise LlmProbeError(
            Problem.TIMEOUT, f"{target.url}: {type(exc).__name__} ({_reason(exc, key)})"
        ) from None
    except httpx.HTTPError as exc:
        raise _transport_error(target, exc, key) from None


def _transport_error(target: ProbeTarget, exc: httpx.HTTPError, key: Secret) -> LlmProbeError:
    host = _host(target)
    tls = _ssl_error(exc)
    if tls is not None:
        return LlmProbeError(
            Problem.TLS,
            f"TLS handshake with {host} failed: {tls.reason or tls} (is base_url"
            f" {target.base_url} an https endpoint whose certificate this host trusts?)",
        )
    return LlmProbeError(Problem.UNREACHABLE, f"cannot reach {host}: {_reason(exc, key)}")


def _host(target: ProbeTarget) -> str:
    url = httpx.URL(target.url)
    return f"{url.host}:{url.port}" if url.port else url.host


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ssl.SSLError under httpx's and httpcore's wrappers, if the cause is TLS."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(exc: BaseException, key: Secret) -> str:
    return key.redact(str(exc) or type(exc).__name__)


# --- pure ----------------------------------------------------------------------------------


def interpret(
    status: int,
    body: bytes,
    target: ProbeTarget,
    redact: Callable[[str], str] = str,
    key_source: str = "the key",
) -> list[str]:
    """The listed model ids, if the answer is a listing that holds every wanted model."""
    if status != 200:
        raise _status_error(status, body, target, redact, key_source)
    listed = _model_ids(body)
    if listed is None:
        raise LlmProbeError(
            Problem.HTTP_ERROR,
            f"{target.url} answered 200 but not with a model list: {redact(api_message(body))}"
            " (is base_url the API's root?)",
        )
    missing = [m for m in target.models if m not in listed]
    if missing:
        raise LlmProbeError(
            Problem.UNKNOWN_MODEL,
            f"{target.base_url} does not offer {', '.join(missing)} (it lists:"
            f" {', '.join(sorted(listed)) or 'nothing'}); fix [llm] chunk_model/analysis_model",
        )
    return listed


def _status_error(
    status: int, body: bytes, target: ProbeTarget, redact: Callable[[str], str], key_source: str
) -> LlmProbeError:
    said = f"HTTP {status}: {redact(api_message(body))}"
    if status in (401, 403):
        return LlmProbeError(
            Problem.KEY_REJECTED,
            f"{target.base_url} rejected the API key ({said}); check {key_source}",
        )
    if status == 402:
        return LlmProbeError(
            Problem.NO_BALANCE,
            f"the account has no balance left ({said}); top it up before the run",
        )
    hint = " (is base_url right?)" if status == 404 else ""
    return LlmProbeError(Problem.HTTP_ERROR, f"{target.url} answered {said}{hint}")


def _model_ids(body: bytes) -> list[str] | None:
    """`{"object": "list", "data": [{"id": ...}, ...]}` -> the ids; None if not that shape."""
    try:
        data = json.loads(body)["data"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(data, list):
        return None
    ids = [item.get("id") for item in data if isinstance(item, dict)]
    return [i for i in ids if isinstance(i, str)]
