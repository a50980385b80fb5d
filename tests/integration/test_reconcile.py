"""Graph data lost behind the ledger's back: the next run notices and processes it again.

The append-only files of the embedded FalkorDB deleted, the graph wiped by hand;
`lexi-maint verify JOB` names what differs (exit 1) and agrees again afterwards. A graph file
cut short cannot be loaded at all: the run refuses clearly, and rebuilds once it is moved aside.
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


def test_a_cut_short_graph_file_is_refused_clearly_and_rebuilt_once_moved_aside(
    ws: Workspace,
) -> None:
    """A clean stop leaves the whole graph in the snapshot (the base file); cut short, the
    server cannot load it. The run says so, names the directory and the way out, and
    leaves the file as it was; moved aside, the next run rebuilds the graph."""
    count = first_run(ws)
    (base,) = aof_dir(ws).glob("*.base.rdb")
    half = base.stat().st_size // 2
    with base.open("r+b") as handle:
        handle.truncate(half)
    refused = ws.cli("run", "cao_import")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    data = aof_dir(ws).parent
    assert f"FalkorDB cannot load the graph's files in {data}: Error loading data from RDB" in (
        refused.stderr
    )
    assert f"mv {data} {data}.broken" in refused.stderr
    assert base.stat().st_size == half  # not repaired, not deleted: the operator decides
    assert set(statuses(ws).values()) == {("done", 1)}  # the ledger is untouched
    data.rename(data.with_name("data.broken"))
    rerun_restores(ws, count, missing=count)


def test_a_graph_wiped_by_hand_is_noticed_and_repaired(ws: Workspace) -> None:
    count = first_run(ws)
    wiped = ws.cli("graph", "query", "--write", "MATCH (n) DETACH DELETE n")
    assert wiped.returncode == 0, wiped.stderr
    assert ws.graph_stats().node_count("Document") == 0
    rerun_restores(ws, count, missing=count)
