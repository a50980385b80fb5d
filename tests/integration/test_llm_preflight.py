"""The LLM preflight (`check_llm`, which `doctor` and the executor run) against real endpoints:
the OpenAI-compatible test server on loopback, a closed port, a plain-HTTP port spoken to
over TLS. Nothing is swapped in: the checks read the key file and speak HTTP themselves."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lexi_maint.cli.doctor import doctor
from lexi_maint.config import Config, parse_config
from lexi_maint.lifecycle.preflight import check_llm
from lexi_maint.llm.keys import REDACTED, api_key
from lexi_maint.llm.probe import LlmProbeError, ProbeTarget, Problem, probe
from lexi_maint.secretfile import Secret
from tests.llm_server import API_KEY, LISTING, FakeLlmServer

pytestmark = pytest.mark.integration


@pytest.fixture()
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer() as s:
        yield s


def config(tmp_path: Path, base_url: str, key: str = API_KEY, **llm: object) -> Config:
    key_file = tmp_path / "deepseek-api-key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    raw = {
        "state_dir": str(tmp_path / "state"),
        "daemon": {"api_key_file": str(key_file)},
        "llm": {"provider": "deepseek", "base_url": base_url, **llm},
        "jobs": {},
    }
    return parse_config(raw, tmp_path / "lexi-maint.toml")


def test_ok_names_the_endpoint_and_the_models(server: FakeLlmServer, tmp_path: Path) -> None:
    check = check_llm(config(tmp_path, server.url))
    assert check.ok, check.detail
    assert server.url in check.detail and "deepseek-chat, deepseek-reasoner" in check.detail
    assert server.listings() == [200]
    assert server.count() == 0, "the probe asked for a completion: it spent tokens"


def test_a_rejected_key(server: FakeLlmServer, tmp_path: Path) -> None:
    check = check_llm(config(tmp_path, server.url, key="sk-wrong-key-0000"))
    assert not check.ok
    assert "rejected the API key (HTTP 401" in check.detail, check.detail
    assert "sk-wrong-key" not in check.detail
    assert server.listings() == [401]


def test_no_balance(server: FakeLlmServer, tmp_path: Path) -> None:
    server.inject("402", model=LISTING)
    check = check_llm(config(tmp_path, server.url))
    assert not check.ok
    assert "no balance left (HTTP 402: Insufficient Balance)" in check.detail, check.detail


def test_a_model_the_endpoint_does_not_offer(server: FakeLlmServer, tmp_path: Path) -> None:
    price = {"input_cache_hit": 0.1, "input_cache_miss": 1.0, "output": 2.0}
    raw = config(tmp_path, server.url, analysis_model="deepseek-v9",
                 prices={"deepseek-v9": price})  # fmt: skip
    check = check_llm(raw)
    assert not check.ok
    assert "does not offer deepseek-v9" in check.detail, check.detail
    assert "it lists: deepseek-chat, deepseek-reasoner" in check.detail


def test_an_unreachable_host(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port that was free a moment ago: nothing listens
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    check = check_llm(config(tmp_path, f"http://127.0.0.1:{port}"))
    assert not check.ok
    assert check.detail.startswith("cannot reach 127.0.0.1:"), check.detail


def test_tls_to_a_plain_http_port(tmp_path: Path) -> None:
    with plain_http_port() as port, pytest.raises(LlmProbeError) as caught:
        probe(config(tmp_path, f"https://127.0.0.1:{port}").llm, _key())
    assert caught.value.problem is Problem.TLS
    assert f"TLS handshake with 127.0.0.1:{port} failed" in str(caught.value), caught.value


def test_the_deadline_bounds_a_silent_endpoint(tmp_path: Path) -> None:
    with silent_port() as port, pytest.raises(LlmProbeError) as caught:
        probe(config(tmp_path, f"http://127.0.0.1:{port}").llm, _key(), deadline=0.5)
    assert caught.value.problem is Problem.TIMEOUT, caught.value


def test_a_wrong_base_url(server: FakeLlmServer, tmp_path: Path) -> None:
    server.inject("404", model=LISTING)
    check = check_llm(config(tmp_path, server.url))
    assert not check.ok and "HTTP 404" in check.detail and "base_url" in check.detail


def test_no_key_file_says_where_to_put_one(tmp_path: Path) -> None:
    raw = {"llm": {"provider": "deepseek"}, "jobs": {}, "state_dir": str(tmp_path)}
    check = check_llm(parse_config(raw, tmp_path / "c.toml"))
    assert not check.ok and "[daemon] api_key_file" in check.detail, check.detail


def test_an_echoed_key_is_redacted(tmp_path: Path) -> None:
    with echoing_port() as port, pytest.raises(LlmProbeError) as caught:
        probe(config(tmp_path, f"http://127.0.0.1:{port}").llm, _key())
    assert API_KEY not in str(caught.value) and REDACTED in str(caught.value)
    assert caught.value.problem is Problem.HTTP_ERROR


def test_the_target_lists_each_model_once() -> None:
    target = ProbeTarget("https://api.deepseek.com/", ("deepseek-chat",), 10.0)
    assert target.url == "https://api.deepseek.com/models"


def _key() -> Secret:
    return api_key(API_KEY, "test")


@contextlib.contextmanager
def _listener(answer: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback TCP port whose every connection is handed to `answer` in a thread."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)  # so the loop sees `stop`: close() does not wake accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                conn.settimeout(10)
                with conn:
                    answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def plain_http_port() -> contextlib.AbstractContextManager[int]:
    """An HTTP server that answers whatever arrives, a TLS ClientHello included, in plain text."""

    def answer(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    return _listener(answer)


def silent_port() -> contextlib.AbstractContextManager[int]:
    """Accepts, reads the request, then sends one byte per 0.1 s: never a complete answer."""

    def answer(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(50):
                conn.sendall(b" ")
                time.sleep(0.1)

    return _listener(answer)


def echoing_port() -> contextlib.AbstractContextManager[int]:
    """A 500 whose error message repeats the request's Authorization header."""

    def answer(conn: socket.socket) -> None:
        request = conn.recv(4096).decode("latin-1")
        lines = request.split("\r\n")
        auth = next((x for x in lines if x.lower().startswith("authorization")), "")
        body = json.dumps({"error": {"message": f"bad gateway for {auth}"}}).encode()
        head = f"HTTP/1.1 500 Oops\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        conn.sendall(head + body)

    return _listener(answer)


def test_doctor_prints_the_same_check(server: FakeLlmServer, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    good = config(tmp_path, server.url)
    job = parse_config({"jobs": {"j": {"input": str(docs)}}}, tmp_path / "j.toml").job("j")
    out = io.StringIO()
    doctor(dataclasses.replace(good, jobs={"j": job}), "j", out)
    assert f"✓ LLM endpoint: {server.url} accepts the key" in out.getvalue(), out.getvalue()
    bad = config(tmp_path, server.url, key="sk-wrong-key-0000")
    out = io.StringIO()
    assert doctor(dataclasses.replace(bad, jobs={"j": job}), "j", out) == 1
    assert f"✗ LLM endpoint: {server.url} rejected the API key" in out.getvalue(), out.getvalue()
