"""The graph server apart from the runner, as a daemon run has it: `lexi-maint graph serve`
in the foreground (the graph unit's ExecStart), a run that attaches to it, and the attach
mode's probe, which checks the server but never starts one. Real FalkorDB, real commands;
the unit around them (systemd) is the VM tier's (tests/vm, scenario batch)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lexi_maint.config.graph import GraphConfig
from lexi_maint.errors import GraphError
from lexi_maint.graph.backend import serve_probed
from lexi_maint.graph.falkorserver import FalkorServer, ServerLayout
from lexi_maint.procfs import alive
from lexi_maint.state import GRAPH_UNIT_ENV
from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace

pytestmark = pytest.mark.integration

UNIT = "lexi-graph-test.service"


@contextmanager
def notify_socket(path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(60)
    try:
        yield sock
    finally:
        sock.close()


def redis_pid(state: Path) -> int:
    return int(ServerLayout.under(state).pidfile.read_text().strip())


@contextmanager
def graph_serve(ws: Workspace) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`lexi-maint graph serve` running, with the READY message it sent."""
    with notify_socket(ws.root / "notify") as notify:
        serve = subprocess.Popen(
            lexi_argv(ws.config, "graph", "serve"),
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NOTIFY_SOCKET": str(ws.root / "notify")},
        )
        try:
            ready = notify.recv(4096).decode()
            yield serve, ready
        finally:
            if serve.poll() is None:
                serve.kill()
            serve.communicate(timeout=30)


def test_a_run_attaches_to_the_served_graph_and_serve_stops_it_on_sigterm() -> None:
    with workspace() as ws:
        copy_samples(ws.input)
        ws.write_config(workers=1)
        with graph_serve(ws) as (serve, ready):
            assert "READY=1" in ready and "answers on" in ready
            server = redis_pid(ws.state)
            run = subprocess.run(
                lexi_argv(ws.config, "run", "cao_import", "-v"),
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, GRAPH_UNIT_ENV: UNIT},
            )
            assert run.returncode == 0, run.stderr
            assert f"attached to the FalkorDB server of {UNIT}" in run.stderr
            assert redis_pid(ws.state) == server and alive(server)  # the run started none
            serve.send_signal(signal.SIGTERM)
            assert serve.wait(30) == 0
        deadline = time.monotonic() + 10
        while alive(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(server)
        assert ws.graph_stats().node_count("Document") >= 1  # fsynced: kept after the stop


def test_serve_fails_when_its_server_dies_so_that_systemd_restarts_it() -> None:
    with workspace() as ws:
        ws.write_config(workers=1)
        with graph_serve(ws) as (serve, _ready):
            os.kill(redis_pid(ws.state), signal.SIGKILL)
            assert serve.wait(30) == 3  # a failure: Restart=on-failure applies


def test_the_attached_probe_checks_the_server_but_never_starts_one(
    falkordb_state_dir: Path,
) -> None:
    environ = {GRAPH_UNIT_ENV: UNIT}
    with (
        FalkorServer(falkordb_state_dir) as server,
        serve_probed(GraphConfig(), falkordb_state_dir, environ) as served,
    ):
        assert served.target.socket_path == server.socket_path
        assert served.health().up
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        while server.exited() is None:
            time.sleep(0.02)
        health = served.health()
        assert not health.up and not health.revived
        assert "does not answer PING" in health.detail
        assert server.exited() is not None  # nobody started it again


def test_attaching_to_a_server_that_never_answers_is_an_outage(
    falkordb_state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lexi_maint.graph.backend.ATTACH_TIMEOUT", 0.3)
    environ = {GRAPH_UNIT_ENV: UNIT}
    with (
        pytest.raises(GraphError) as caught,
        serve_probed(GraphConfig(), falkordb_state_dir, environ),
    ):
        pass
    assert caught.value.unavailable
    assert f"journalctl -u {UNIT}" in str(caught.value)
