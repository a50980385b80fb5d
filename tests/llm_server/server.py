"""The server: `POST <base>/chat/completions` and `GET <base>/models` on 127.0.0.1, HTTP/1.1
with keep-alive.

It runs an asyncio event loop in a background thread (one loop, no thread per connection,
so a benchmark with hundreds of connections costs little CPU next to the client it tests).

Every request is checked for `Authorization: Bearer <api_key>` (else 401, as DeepSeek
answers), gets the responder's answer with a `usage` block shaped like DeepSeek's
(prompt_cache_hit_tokens, completion_tokens_details.reasoning_tokens) and, for reasoning
models, a `reasoning_content`, and is sent after its simulated latency (`latency.py`; it
may grow with the answer's output tokens). Token counts: 4 characters per token; a
reasoning model thinks (200 + 35 * sqrt(prompt tokens of every message but the system
prompt: what it reads besides its instructions)) tokens, times 0.75-1.25 drawn per request:
more for a larger input, but less than linearly. Prompt cache: like DeepSeek's, a
request's prefix that an earlier request (any model) already sent is served from the cache,
in whole units of 64 tokens (`PrefixCache`).

A client that disconnects while its answer is pending is not answered (recorded with
answered=False: nothing was delivered to bill). `hold()` keeps answers back until
`release()` (a test can then kill the client at a moment when no answer is on the way).

`GET /models` lists `models` (OpenAI's shape, as DeepSeek answers it) for the right key, 401
otherwise; it spends nothing and is counted apart (`listings()`), not among the calls. Only
faults injected with `model=LISTING` ("/models") apply to it, e.g. `inject("402",
model=LISTING)`; chat faults never do.

Faults, queued with `inject(kind, times=1, model=None, ...)` and applied to the next calls
(of `model`, if given) in order:
    "429"               429 with Retry-After (`retry_after`, default "0")
    "500" "503"         server errors
    "400" "422"         request errors (message echoes the Authorization header when
                        `echo_auth=True`, to prove lexi-maint redacts it)
    "401" "402"         authentication / balance errors
    "reset"             read the request, then close the connection with a TCP RST
    "stall"             200 and then a blank line every `interval` s for `stall` s (as DeepSeek
                        does while a request is queued), then the answer if still connected
    "blank"             200 with empty content (finish_reason "stop")
    "bad_json"          200 with content that is not JSON
    "bad_body"          200 whose body is not JSON at all
    "content"           200 with the given `content`
`outage(seconds, status=500)` makes every request (the `GET <base>/models` probe included)
answer `status` until `seconds` have passed: a dependency outage rather than a counted fault.
Every call is recorded (`calls()`): the sha256 of its body (lexi-maint's cache key), the
model, the fault, the status sent and whether a complete answer went out.

When the server runs in its own process (`python -m tests.llm_server`), the same is reached
over HTTP: `GET /_admin/stats` ({"calls", "answered", "total_latency", and the answered
calls' "prompt_tokens", "completion_tokens", "cache_hit_tokens"; the same per model under
"by_model"; "listings": how many GET /models; "timeline": each call's [started (the
server's monotonic clock), simulated latency, answered, model, prompt tokens, label: the
first line of the first user message]}),
`POST /_admin/reset` and `POST /_admin/inject` with a JSON object of `inject`'s arguments
(`/_admin/outage`: `outage`'s).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tests.llm_server.latency import LatencyModel
from tests.llm_server.responder import Answer, LexiResponder

API_KEY = "sk-test-0123456789abcdef"
LISTING = "/models"  # the `model` of faults meant for GET /models
MODELS = ("deepseek-chat", "deepseek-reasoner")
Responder = Callable[[str, Sequence[dict[str, str]]], Answer]

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required",
           404: "Not Found", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 503: "Service Unavailable"}  # fmt: skip
ERROR_MESSAGES = {
    400: "Invalid request body format",
    401: "Authentication Fails, Your api key is invalid",
    402: "Insufficient Balance",
    422: "Invalid Parameters",
    429: "Rate Limit Reached",
    500: "Server Error",
    503: "Server Overloaded",
}


@dataclass(frozen=True)
class Fault:
    kind: str
    times: int = 1
    model: str | None = None
    retry_after: str = "0"
    stall: float = 5.0
    interval: float = 0.05
    content: str = ""


@dataclass(frozen=True)
class Call:
    key: str
    model: str
    fault: str
    status: int
    answered: bool
    latency: float
    started: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit_tokens: int = 0
    label: str = ""  # the first line of the first user message (e.g. which document)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


CACHE_UNIT = 64  # tokens


class PrefixCache:
    """Which prompt prefixes were sent before, in units of CACHE_UNIT tokens."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def hit_tokens(self, messages: Sequence[dict[str, Any]]) -> int:
        """Tokens of the longest already-seen prefix of `messages`; remembers this one."""
        text = "".join(f"{m.get('role', '')}:{m.get('content', '')}\n" for m in messages)
        unit = CACHE_UNIT * 4
        digest = hashlib.blake2b(digest_size=16)
        hits, still_hitting, new = 0, True, []
        for start in range(0, len(text) - unit + 1, unit):
            digest.update(text[start : start + unit].encode())
            mark = digest.copy().digest()
            if still_hitting and mark in self._seen:
                hits += CACHE_UNIT
            else:
                still_hitting = False
                new.append(mark)
        self._seen.update(new)
        return hits

    def clear(self) -> None:
        self._seen.clear()


def _label(data: dict[str, Any]) -> str:
    users = [m for m in data.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    content = str(users[0].get("content", "")) if users else ""
    return content.split("\n", 1)[0][:200]


def thinking_tokens(user_prompt_tokens: int, seed: str) -> int:
    jitter = random.Random(seed).uniform(0.75, 1.25)
    return round((200 + 35 * math.sqrt(user_prompt_tokens)) * jitter)


class FakeLlmServer:
    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: LatencyModel | None = None,
        api_key: str = API_KEY,
        echo_auth: bool = False,
        models: tuple[str, ...] = MODELS,
        port: int = 0,  # 0: any free port
    ) -> None:
        self.responder = responder or LexiResponder()
        self.latency = latency or LatencyModel()
        self.api_key = api_key
        self.echo_auth = echo_auth
        self.models = models
        self._listings: list[int] = []  # status of each GET /models
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._outage: tuple[float, int] = (0.0, 500)  # (until, on the monotonic clock; status)
        self._armed: float | None = None  # an outage's length, waiting for its first request
        self.probes = 0  # GET /models requests seen
        self._calls: list[Call] = []
        self._prefixes = PrefixCache()
        self._readers: dict[asyncio.StreamWriter, asyncio.StreamReader] = {}
        self._open: asyncio.Event | None = None  # set: answers go out; cleared by hold()
        self._waiting: dict[str, int] = {}  # by model: requests whose answer has not gone out
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> FakeLlmServer:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self._port = started.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> int:
        self._open = asyncio.Event()
        self._open.set()
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self._port, backlog=1024
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    # -- scripting and inspection ------------------------------------------------------------

    def inject(self, kind: str, times: int = 1, model: str | None = None, **options: Any) -> None:
        with self._lock:
            self._faults.append(Fault(kind, times, model, **options))

    def outage(
        self, seconds: float, status: int = 500, *, from_first_request: bool = False
    ) -> None:
        """Answer every request with `status` for the next `seconds` (counted from the next
        request that arrives, with `from_first_request`: a client slow to start meets it)."""
        with self._lock:
            self._outage = (time.monotonic() + seconds, status)
            self._armed = seconds if from_first_request else None

    def _outage_status(self) -> int | None:
        with self._lock:
            if self._armed is not None:
                self._outage = (time.monotonic() + self._armed, self._outage[1])
                self._armed = None
            until, status = self._outage
        return status if time.monotonic() < until else None

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def listings(self) -> list[int]:
        """The status sent for each `GET /models`."""
        with self._lock:
            return list(self._listings)

    def count(self, model: str | None = None) -> int:
        return sum(1 for c in self.calls() if model is None or c.model == model)

    def answered_keys(self) -> set[str]:
        return {c.key for c in self.calls() if c.answered}

    def total_latency(self) -> float:
        return sum(c.latency for c in self.calls())

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._calls.clear()
            self._listings.clear()
            self._prefixes.clear()

    def waiting(self, model: str | None = None) -> int:
        """Requests received and not yet answered (they are not in calls() yet)."""
        with self._lock:
            return sum(n for m, n in self._waiting.items() if model is None or m == model)

    def hold(self) -> None:
        """Keep every answer back (requests still arrive and wait) until release()."""
        self._loop.call_soon_threadsafe(self._gate().clear)

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._gate().set)

    def _gate(self) -> asyncio.Event:
        if self._open is None:
            raise RuntimeError("the server is not running")
        return self._open

    def _take_fault(self, model: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.model == model or (fault.model is None and model != LISTING):
                    if fault.times <= 1:
                        del self._faults[i]
                    else:
                        self._faults[i] = replace(fault, times=fault.times - 1)
                    return fault
        return None

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        messages = request.get("messages") or []
        with self._lock:
            hits = self._prefixes.hit_tokens(messages)
        return chat_completion(request, self.responder, hit_tokens=hits)

    # -- the protocol ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._readers[writer] = reader
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._handle(request, writer):
                    break
        self._readers.pop(writer, None)
        if not writer.is_closing():
            writer.close()

    async def _handle(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be used again."""
        if request.path.startswith("/_admin/"):
            return await self._admin(request, writer)
        if request.method == "GET" and request.path.endswith(LISTING):
            return await self._list_models(request, writer)
        started = time.monotonic()
        key = hashlib.sha256(request.body).hexdigest()
        try:
            data = json.loads(request.body)
            model = str(data["model"])
        except (ValueError, KeyError, TypeError):
            return await self._error(writer, 400, Call(key, "?", "", 400, False, 0.0, started))
        call = Call(key, model, "", 0, False, 0.0, started)
        if not request.path.endswith("/chat/completions"):
            return await self._error(writer, 404, call)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return await self._error(writer, 401, call, request)
        down = self._outage_status()
        if down is not None:
            return await self._error(writer, down, replace(call, fault="outage"), request)
        fault = self._take_fault(model)
        kind = fault.kind if fault else ""
        call = replace(call, fault=kind)
        if fault is not None and kind.isdigit():
            return await self._error(writer, int(kind), call, request, fault)
        if kind == "reset":
            self._record(call)
            _reset(writer)
            return False
        if fault is not None and kind == "stall":
            return await self._stall(writer, data, fault, call)
        return await self._respond(writer, data, fault, call)

    async def _admin(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        action = request.path.removeprefix("/_admin/")
        if action == "reset":
            self.reset()
        elif action == "inject":
            self.inject(**json.loads(request.body))
        elif action == "outage":
            self.outage(**json.loads(request.body))
        calls = self.calls()
        stats: dict[str, Any] = call_stats(calls)
        stats["by_model"] = {
            model: call_stats([c for c in calls if c.model == model])
            for model in sorted({c.model for c in calls})
        }
        stats["listings"] = len(self.listings())
        stats["timeline"] = [
            (c.started, c.latency, c.answered, c.model, c.prompt_tokens, c.label) for c in calls
        ]
        writer.write(_response_bytes(200, _json(stats)))
        await writer.drain()
        return True

    async def _list_models(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        status = 200
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            status = 401
        elif (down := self._outage_status()) is not None:
            status = down
        else:
            fault = self._take_fault(LISTING)
            if fault is not None and fault.kind.isdigit():
                status = int(fault.kind)
        with self._lock:
            self._listings.append(status)
            self.probes += 1
        if status != 200:
            message = ERROR_MESSAGES.get(status, f"HTTP {status}")
            body = _json({"error": {"message": message, "type": "invalid_request_error"}})
        else:
            data = [{"id": m, "object": "model", "owned_by": "lexi-test"} for m in self.models]
            body = _json({"object": "list", "data": data})
        writer.write(_response_bytes(status, body))
        await writer.drain()
        return True

    async def _respond(
        self, writer: asyncio.StreamWriter, data: dict[str, Any], fault: Fault | None, call: Call
    ) -> bool:
        answer = self._answer(data)
        usage = answer["usage"]
        delay = self.latency.seconds(call.model, call.key, int(usage["completion_tokens"]))
        call = replace(call, latency=delay, prompt_tokens=int(usage["prompt_tokens"]),
                       completion_tokens=int(usage["completion_tokens"]),
                       cache_hit_tokens=int(usage["prompt_cache_hit_tokens"]),
                       label=_label(data))  # fmt: skip
        if not await self._wait(writer, delay, call.model):
            self._record(replace(call, status=200, answered=False))  # nobody to answer
            return False
        if call.fault == "bad_body":
            return await self._send(writer, 200, b"<html>502 Bad Gateway</html>", call, False)
        message = answer["choices"][0]["message"]
        if call.fault == "blank":
            message["content"] = ""
        elif call.fault == "bad_json":
            message["content"] = '{"section_title": "Artikel 1", "dates": ['
        elif call.fault == "content" and fault is not None:
            message["content"] = fault.content
        return await self._send(writer, 200, _json(answer), call, True)

    async def _wait(self, writer: asyncio.StreamWriter, seconds: float, model: str) -> bool:
        """Sleep `seconds`, then while answers are held; False if the client went away."""
        reader = self._readers.get(writer)

        async def ready() -> None:
            await asyncio.sleep(seconds)
            await self._gate().wait()

        waiting = asyncio.ensure_future(ready())
        watched: set[asyncio.Future[Any]] = {waiting}
        gone = asyncio.ensure_future(reader.read(1)) if reader is not None else None
        if gone is not None:
            watched.add(gone)  # a client waiting for its answer sends nothing: EOF = gone
        with self._lock:
            self._waiting[model] = self._waiting.get(model, 0) + 1
        try:
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with self._lock:
                self._waiting[model] -= 1
            for task in watched:
                task.cancel()
            await asyncio.gather(*watched, return_exceptions=True)  # the reader is free again
        return waiting in done

    async def _stall(
        self, writer: asyncio.StreamWriter, data: dict[str, Any], fault: Fault, call: Call
    ) -> bool:
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        writer.write((head + "\r\n").encode())
        answered = False
        try:
            until = time.monotonic() + fault.stall
            while time.monotonic() < until:
                writer.write(b"1\r\n\n\r\n")  # one blank line, as DeepSeek sends while queued
                await writer.drain()
                await asyncio.sleep(fault.interval)
            body = _json(self._answer(data))
            answered = True
            self._record(replace(call, status=200, answered=True))
            writer.write(f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, OSError):  # the client gave up: what a deadline is for
            if not answered:
                self._record(replace(call, status=200, answered=False))
            return False
        return True

    async def _error(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        call: Call,
        request: Request | None = None,
        fault: Fault | None = None,
    ) -> bool:
        message = ERROR_MESSAGES.get(status, f"HTTP {status}")
        if status in (400, 422) and self.echo_auth and request is not None:
            message += f" (request had Authorization: {request.headers.get('authorization')})"
        body = {"error": {"message": message, "type": "invalid_request_error", "code": status}}
        headers = {"Retry-After": fault.retry_after} if status == 429 and fault else {}
        return await self._send(writer, status, _json(body), call, False, headers)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        call: Call,
        answer: bool,
        headers: dict[str, str] | None = None,
    ) -> bool:
        # recorded before the client can read the answer, so a test that got its answer
        # always finds the call in calls(); answered means "handed to the connection"
        self._record(replace(call, status=status, answered=answer and not writer.is_closing()))
        writer.write(_response_bytes(status, body, headers))
        try:
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        return True


def call_stats(calls: Sequence[Call]) -> dict[str, Any]:
    """Counts over `calls`; the token sums cover the answered (billed) calls."""
    answered = [c for c in calls if c.answered]
    return {"calls": len(calls), "answered": len(answered),
            "total_latency": sum(c.latency for c in calls),
            "prompt_tokens": sum(c.prompt_tokens for c in answered),
            "completion_tokens": sum(c.completion_tokens for c in answered),
            "cache_hit_tokens": sum(c.cache_hit_tokens for c in answered)}  # fmt: skip


def chat_completion(
    request: dict[str, Any], responder: Responder, *, hit_tokens: int = 0
) -> dict[str, Any]:
    """A chat.completion body answering `request`, with DeepSeek-style usage."""
    model = str(request.get("model", ""))
    messages = request.get("messages") or []
    answer = responder(model, messages)
    prompt = sum(tokens(str(m.get("content", ""))) for m in messages)
    hit = min(hit_tokens, prompt)
    completion = tokens(answer.content)
    # what the model reads besides its instructions: every message but the system prompt
    user = "".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
    reasoning = thinking_tokens(tokens(user), user) if answer.reasoning else 0
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning:
        message["reasoning_content"] = answer.reasoning
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion + reasoning,
            "total_tokens": prompt + completion + reasoning,
            "prompt_cache_hit_tokens": hit,
            "prompt_cache_miss_tokens": prompt - hit,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection between requests
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length") or 0))
    parts = request_line.split(" ")
    return Request(parts[0], parts[1] if len(parts) > 1 else "/", headers, body)


def _response_bytes(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
             "Content-Type: application/json", f"Content-Length: {len(body)}"]  # fmt: skip
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
