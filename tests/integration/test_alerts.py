"""Healthchecks-style pings against a real local HTTP server, and the OnFailure notifier."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lexi_maint.config.alerts import AlertsConfig
from lexi_maint.report.ping import Ping, Pinger
from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace

pytestmark = pytest.mark.integration


@dataclass
class PingServer:
    """Records every POST (path, body); answers `failures` 500s first, or stalls."""

    port: int = 0
    received: list[tuple[str, str]] = field(default_factory=list)
    failures: int = 0
    stall: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ping/0a1b2c3d"


@pytest.fixture()
def server() -> Iterator[PingServer]:
    state = PingServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            state.received.append((self.path, body))
            if state.stall:
                time.sleep(state.stall)
            code = 500 if state.failures > 0 else 200
            state.failures -= 1
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def pinger(url: str, **changes: float) -> Pinger:
    config = AlertsConfig(ping_url=url, ping_timeout=changes.get("timeout", 5.0),
                          ping_attempts=int(changes.get("attempts", 3)))  # fmt: skip
    return Pinger(config, sleep=lambda seconds: None)


def test_the_three_pings_follow_the_healthchecks_convention(server: PingServer) -> None:
    p = pinger(server.url)
    assert p.send(Ping.START, "starting")
    assert p.send(Ping.SUCCESS, "all done ✅")
    assert p.send(Ping.FAIL, "2 failed")
    assert server.received == [
        ("/ping/0a1b2c3d/start", "starting"),
        ("/ping/0a1b2c3d", "all done ✅"),
        ("/ping/0a1b2c3d/fail", "2 failed"),
    ]


def test_a_failing_ping_is_retried(server: PingServer) -> None:
    server.failures = 2
    assert pinger(server.url).send(Ping.SUCCESS, "x")
    assert len(server.received) == 3


def test_a_ping_that_keeps_failing_gives_up_without_raising(
    server: PingServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.failures = 10
    assert not pinger(server.url, attempts=2).send(Ping.FAIL, "x")
    assert len(server.received) == 2
    assert "ping http://127.0.0.1:" in caplog.text and "0a1b2c3d" not in caplog.text  # no secret


def test_a_stalled_server_is_bounded_by_the_timeout(server: PingServer) -> None:
    server.stall = 3.0
    assert not pinger(server.url, timeout=0.3, attempts=2).send(Ping.START, "x")
    assert len(server.received) == 2  # each attempt gave up after ping_timeout


def test_an_unreachable_url_never_raises() -> None:
    assert not pinger("http://127.0.0.1:9/ping/x", attempts=2).send(Ping.START, "x")


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as w:
        yield w


def test_a_foreground_run_pings_start_then_success_or_fail(
    ws: Workspace, server: PingServer
) -> None:
    ws.write_config(extra=f'\n[alerts]\nping_url = "{server.url}"\nping_timeout = 5\n')
    copy_samples(ws.input)
    assert ws.cli("run", "cao_import").returncode == 0
    (ws.input / "empty.txt").write_text("")
    assert ws.cli("run", "cao_import").returncode == 1
    paths = [path for path, _ in server.received]
    assert paths == ["/ping/0a1b2c3d/start", "/ping/0a1b2c3d",
                     "/ping/0a1b2c3d/start", "/ping/0a1b2c3d/fail"]  # fmt: skip
    assert "result: all documents done" in server.received[1][1]
    assert server.received[2][1].startswith("job cao_import · run cao_import-")
    assert "result: 1 document failed" in server.received[3][1]


def test_a_dead_ping_url_does_not_change_the_run(ws: Workspace) -> None:
    ws.write_config(extra='\n[alerts]\nping_url = "http://127.0.0.1:9/x"\nping_attempts = 1\n')
    copy_samples(ws.input)
    result = ws.cli("run", "cao_import")
    assert result.returncode == 0, result.stderr
    assert "ping http://127.0.0.1:9/… failed after 1 attempts" in result.stderr


def test_notify_failure_feeds_the_report_to_the_notifier(ws: Workspace) -> None:
    out = ws.root / "notified.txt"
    notifier = ws.root / "notifier.py"
    notifier.write_text(
        "import os, sys\n"
        "text = os.environ['LEXI_JOB'] + ' ' + os.environ['LEXI_UNIT'] + '\\n' + sys.stdin.read()\n"
        "open(sys.argv[1], 'w').write(text)\n"
    )
    ws.write_config(extra=f'\n[alerts]\non_failure = ["{sys.executable}", "{notifier}", "{out}"]\n')
    copy_samples(ws.input)
    assert ws.cli("run", "cao_import").returncode == 0
    env = {**os.environ, "MONITOR_UNIT": "lexi-batch@cao_import.service",
           "MONITOR_SERVICE_RESULT": "exit-code", "MONITOR_EXIT_STATUS": "1"}  # fmt: skip
    result = subprocess.run(lexi_argv(ws.config, "notify-failure", "cao_import"), env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert text.startswith("cao_import lexi-batch@cao_import.service\n")
    assert "lexi-batch@cao_import.service failed (lexi-maint job cao_import)" in text
    assert "MONITOR_SERVICE_RESULT=exit-code" in text and "MONITOR_EXIT_STATUS=1" in text
    assert "last run: started (UTC) " in text and "by foreground" in text


def test_notify_failure_without_a_notifier_prints_the_report(ws: Workspace) -> None:
    ws.write_config()
    result = ws.cli("notify-failure", "cao_import")
    assert result.returncode == 0
    assert "lexi-batch@cao_import.service failed" in result.stdout
    assert "(no [alerts] on_failure command configured)" in result.stdout
    assert not ws.state.exists()  # the report reads; it creates nothing


def test_the_batch_unit_names_its_on_failure_unit() -> None:
    units = Path(__file__).resolve().parents[2] / "systemd"
    # templates: make install fills in @PREFIX@ (tests/unit/test_install_files.py)
    assert "OnFailure=lexi-notify@%i.service" in (units / "lexi-batch@.service.in").read_text()
    notify = (units / "lexi-notify@.service.in").read_text()
    assert "ExecStart=@PREFIX@/venv/bin/lexi-maint notify-failure %i" in notify


def test_notify_failure_reports_even_when_the_ledger_cannot_be_read(ws: Workspace) -> None:
    ws.write_config()
    ws.state.mkdir()
    (ws.state / "ledger.sqlite3").write_text("not a database")
    result = ws.cli("notify-failure", "cao_import")
    assert result.returncode == 0, result.stderr
    assert "lexi-batch@cao_import.service failed" in result.stdout
    assert f"last run: unknown (ledger {ws.state / 'ledger.sqlite3'}" in result.stdout
