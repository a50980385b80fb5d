"""The only module that speaks HTTP to the model API (OpenAI-compatible chat completions).

`ChatClient.complete(request)` sends one non-streaming request and returns the answer's
content, finish reason and token counts; `reasoning_content` is read for nothing but its
token count. What each outcome means (`classify` and `ChatClient.complete`):

    200 with a JSON body        the answer (blank content is returned: the caller retries)
    429, 408, 409, 5xx          retried with exponential backoff and jitter, honouring
    connection errors           Retry-After (seconds or an HTTP date); a malformed 200 body
    malformed 200 body          and a request over `request_deadline` count the same way.
    request_deadline passed     After `max_retries` retries: OutageError llm_unavailable
                                (the API's fault: the runner pauses, probes, tries again)
    400, 422, other 4xx         DocumentError llm_bad_request with the API's message
    401, 403                    JobStopError llm_auth: every document would fail
    402                         JobStopError llm_balance: the job stops, documents stay pending

The deadline covers one attempt from sending to the last byte, so the blank keep-alive
lines DeepSeek sends while a request is queued cannot extend it (they do reset httpx's
read timeout, which only bounds silence). A job-wide slot (`slots.py`) is held only while
a request is on the wire, not during backoff. Every message is passed through
`Secret.redact`: API error texts may echo the key.

Connections: `LaneTransport` gives each request in flight its own single-connection httpx
transport (a "lane", kept alive between requests). httpcore's shared pool re-scans every
connection for every queued request, which with 64 requests in flight cost more CPU than
everything else a worker does (measured: 4.8 of 7.3 s for 400 calls).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import ssl
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cached_property
from typing import Any

import httpx

from lexi_maint.config.llm import LlmConfig, RetrySettings
from lexi_maint.errors import (
    Dependency,
    DocumentError,
    ErrorClass,
    JobStopError,
    LlmError,
    OutageError,
)
from lexi_maint.llm.slots import Slots
from lexi_maint.llm.usage import Tokens
from lexi_maint.secretfile import Secret

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[tuple[str, str], ...]  # (role, content)
    max_tokens: int
    response_format: str = "text"  # or "json_object"
    temperature: float | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": text} for role, text in self.messages],
            "max_tokens": self.max_tokens,
            "stream": False,
        }
        if self.response_format != "text":
            data["response_format"] = {"type": self.response_format}
        if self.temperature is not None:
            data["temperature"] = self.temperature
        return data

    def body(self) -> bytes:
        """The exact bytes sent; the same request always gives the same bytes."""
        return self._encoded

    @cached_property
    def _encoded(self) -> bytes:
        text = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    @cached_property
    def key(self) -> str:
        """sha256 of the body: model, messages and every parameter (the cache key)."""
        return hashlib.sha256(self._encoded).hexdigest()


@dataclass(frozen=True)
class Completion:
    content: str
    finish_reason: str
    tokens: Tokens


@dataclass(frozen=True)
class ClientSettings:
    endpoint: str
    connect_timeout: float
    read_timeout: float
    request_deadline: float
    retry: RetrySettings
    max_connections: int
    max_response_bytes: int = 8 * 2**20

    @classmethod
    def of(cls, config: LlmConfig) -> ClientSettings:
        return cls(
            endpoint=config.endpoint,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            request_deadline=config.request_deadline,
            retry=config.retry,
            max_connections=config.document_concurrency,
            max_response_bytes=config.max_response_bytes,
        )


class Transient(LlmError):
    """An attempt failed in a way that another attempt may not (internal to this module)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


# --- pure parts ----------------------------------------------------------------------------


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    model: str,
    redact: Callable[[str], str] = str,
) -> Completion:
    """Turn one HTTP response into a Completion, or raise Transient/DocumentError."""
    if status == 200:
        return _completion(body)
    message = f"HTTP {status} from {model}: {redact(api_message(body))}"
    if status in RETRY_STATUSES or status >= 500:
        raise Transient(message, parse_retry_after(headers.get("retry-after")))
    if status in (401, 403):
        raise JobStopError(
            ErrorClass.LLM_AUTH, f"the API key was rejected ({message}); check the key"
        )
    if status == 402:
        raise JobStopError(
            ErrorClass.LLM_BALANCE,
            f"insufficient balance ({message}); top up the account and run the job again",
            retryable=True,
        )
    raise DocumentError(ErrorClass.LLM_BAD_REQUEST, message)


def _completion(body: bytes) -> Completion:
    try:
        data = json.loads(body)  # leading keep-alive blank lines are JSON white space
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
        finish = str(choice.get("finish_reason") or "")
        usage = data.get("usage") or {}
        tokens = Tokens(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            reasoning_tokens=int(
                (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
            ),
            cache_hit_tokens=int(
                usage.get("prompt_cache_hit_tokens")
                or (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                or 0
            ),
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise Transient(f"malformed response body ({type(exc).__name__}): {_clip(body)}") from None
    if not isinstance(content, str):
        raise Transient(f"malformed response body (content is {type(content).__name__})")
    return Completion(content, finish, tokens)


def api_message(body: bytes) -> str:
    """The API's error message ({"error": {"message": ...}}), else the body's start."""
    try:
        data = json.loads(body)
        message = data["error"]["message"]
        if isinstance(message, str) and message.strip():
            return _clip(message.encode())
    except (ValueError, KeyError, TypeError):
        pass
    return _clip(body) or "(empty body)"


def _clip(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", "replace").split())
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT] + "…"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (>= 0): delta-seconds (decimals accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    retry: RetrySettings, attempt: int, retry_after: float | None, rand: Callable[[], float]
) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    With Retry-After: that long plus up to 10 % (so a crowd of callers does not return in
    the same instant); without: min(backoff_max, backoff_initial * 2**attempt) scaled by a
    random factor in [0.5, 1).
    """
    if retry_after is not None:
        return retry_after * (1.0 + 0.1 * rand())
    ceiling = min(retry.backoff_max, retry.backoff_initial * 2.0**attempt)
    return ceiling * (0.5 + 0.5 * rand())


# --- the adapter ---------------------------------------------------------------------------


class ChatClient:
    """Use as `async with ChatClient(...) as client:`; one per event loop."""

    def __init__(
        self,
        settings: ClientSettings,
        key: Secret,
        slots: Slots,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._s = settings
        self._key = key
        self._slots = slots
        self._sleep = sleep
        self._rand = rand
        self._http = httpx.AsyncClient(
            headers={
                "Authorization": f"Bearer {key.reveal()}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(
                connect=settings.connect_timeout,
                read=settings.read_timeout,
                write=settings.read_timeout,
                pool=None,
            ),
            transport=transport
            or LaneTransport(settings.endpoint, settings.max_connections, ssl_context),
        )

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()  # closes the transport and its connections

    async def complete(self, request: ChatRequest) -> Completion:
        body = request.body()
        retry = self._s.retry
        for attempt in range(retry.max_retries + 1):
            try:
                return await self._attempt(request.model, body)
            except Transient as exc:
                reason, retry_after = self._key.redact(exc.reason), exc.retry_after
            if attempt == retry.max_retries:
                break
            delay = backoff_delay(retry, attempt, retry_after, self._rand)
            log.info("%s: %s; retry %d in %.2f s", request.model, reason, attempt + 1, delay)
            await self._sleep(delay)
        raise OutageError(  # not the document's fault: the runner pauses and probes the API
            Dependency.LLM,
            ErrorClass.LLM_UNAVAILABLE,
            f"{request.model}: no answer after {retry.max_retries + 1} attempts; last: {reason}",
        )

    async def _attempt(self, model: str, body: bytes) -> Completion:
        try:
            async with (
                self._slots.slot(),
                asyncio.timeout(self._s.request_deadline),
                self._http.stream("POST", self._s.endpoint, content=body) as response,
            ):
                content = await _read_capped(response, self._s.max_response_bytes, model)
        except TimeoutError:
            raise Transient(
                f"no complete answer within request_deadline ({self._s.request_deadline:g} s)"
            ) from None
        except httpx.HTTPError as exc:
            detail = str(exc) or "the connection failed or was closed"
            raise Transient(f"{type(exc).__name__}: {detail}") from None
        return classify(response.status_code, response.headers, content, model, self._key.redact)


async def _read_capped(response: httpx.Response, cap: int, model: str) -> bytes:
    """The body, read chunk by chunk; more than `cap` bytes is the answer's fault, refused."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise _too_large(model, f"announced {int(length)} bytes", cap)
    parts: list[bytes] = []
    size = 0
    async for part in response.aiter_bytes():
        size += len(part)
        if size > cap:
            raise _too_large(model, f"more than {cap} bytes", cap)
        parts.append(part)
    return b"".join(parts)


def _too_large(model: str, what: str, cap: int) -> DocumentError:
    return DocumentError(
        ErrorClass.LLM_INVALID_OUTPUT,
        f"{model}: the answer's body is too large ({what}; max_response_bytes = {cap})",
    )


class LaneTransport(httpx.AsyncBaseTransport):
    """`lanes` single-connection transports; a request takes an idle one and gives it back
    when its response is closed. They share one SSL context and the proxy that the
    environment (HTTPS_PROXY, NO_PROXY, ...) names for the endpoint, if any."""

    def __init__(self, endpoint: str, lanes: int, ssl_context: ssl.SSLContext | None) -> None:
        ssl_context = ssl_context or httpx.create_ssl_context()
        proxy = _proxy_for(endpoint)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._lanes = [
            httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits, proxy=proxy)
            for _ in range(lanes)
        ]
        self._idle: asyncio.LifoQueue[httpx.AsyncHTTPTransport] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._idle is None:
            self._idle = asyncio.LifoQueue()  # most recently used first: its connection is warm
            for lane in self._lanes:
                self._idle.put_nowait(lane)
        idle = self._idle
        lane = await idle.get()
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            idle.put_nowait(lane)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        stream = _GiveBack(response.stream, lambda: idle.put_nowait(lane))
        return httpx.Response(
            response.status_code, headers=response.headers, stream=stream,
            extensions=response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()


class _GiveBack(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._inner:
            yield part

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._release is not None:
                self._release()
                self._release = None


def _proxy_for(endpoint: str) -> str | None:
    url = httpx.URL(endpoint)
    if urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(url.scheme) or proxies.get("all")
