"""Graph data lost behind the ledger's back: the next run notices and processes it again.

The append-only file of the embedded FalkorDB deleted or cut short, the graph wiped by
hand; `lexi-maint verify JOB` names what differs (exit 1) and agrees again afterwards.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lexi_env import Workspace, copy_samples, workspace

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as w:
        yield w


def first_run(ws: Workspace) -> int:
    names = copy_samples(ws.input, copies=4)
    ws.write_config()
    result = ws.cli("run", "cao_import")
    assert result.returncode == 0, result.stdout + result.stderr
    verified = ws.cli("verify", "cao_import")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger and graph agree" in verified.stdout
    return len(names)


def statuses(ws: Workspace) -> dict[str, tuple[str, int]]:
    data = json.loads(ws.cli("status", "cao_import", "--json").stdout)
    return {Path(d["path"]).name: (d["status"], d["attempts"]) for d in data["documents"]}


def rerun_restores(ws: Workspace, count: int, *, missing: int | None = None) -> None:
    verified = ws.cli("verify", "cao_import")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    lost = verified.stdout.count("missing from the graph:")
    assert lost == (missing if missing is not None else lost) and lost > 0
    again = ws.cli("run", "cao_import", "--progress", "lines")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{lost} documents done in the ledger are missing from the graph" in again.stderr
    assert f"{lost} to process" in again.stdout
    assert set(statuses(ws).values()) == {("done", 1)}
    assert ws.graph_stats().node_count("Document") == count
    assert ws.cli("verify", "cao_import").returncode == 0


def aof_dir(ws: Workspace) -> Path:
    return ws.state / "falkordb" / "data" / "appendonlydir"


def test_a_deleted_append_only_file_is_noticed_and_repaired(ws: Workspace) -> None:
    count = first_run(ws)
    shutil.rmtree(aof_dir(ws))
    rerun_restores(ws, count, missing=count)


def test_a_half_truncated_append_only_file_is_noticed_and_repaired(ws: Workspace) -> None:
    count = first_run(ws)
    incr = max(aof_dir(ws).glob("*.incr.aof"), key=lambda p: p.stat().st_size)
    with incr.open("r+b") as handle:
        handle.truncate(incr.stat().st_size // 2)
    rerun_restores(ws, count)


def test_a_graph_wiped_by_hand_is_noticed_and_repaired(ws: Workspace) -> None:
    count = first_run(ws)
    wiped = ws.cli("graph", "query", "MATCH (n) DETACH DELETE n")
    assert wiped.returncode == 0, wiped.stderr
    assert ws.graph_stats().node_count("Document") == 0
    rerun_restores(ws, count, missing=count)
