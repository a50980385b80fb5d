"""Choosing the backend: the Memgraph target is picklable and secret-free, credentials are
checked before any worker starts, and operator commands on Memgraph take no run lock."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lexi_maint.cli.graph import graph_where, operator_store
from lexi_maint.config import Config
from lexi_maint.config.graph import GraphConfig, MemgraphConfig
from lexi_maint.errors import UsageError
from lexi_maint.graph.backend import GraphTarget, connect, embedded, serve
from lexi_maint.graph.memgraph import MemgraphGraphStore

SECRET = "pa55-w0rd"


def memgraph_config(tmp_path: Path) -> GraphConfig:
    password = tmp_path / "memgraph-password"
    password.write_text(SECRET + "\n")
    password.chmod(0o600)
    memgraph = MemgraphConfig(uri="bolt://127.0.0.1:1", username="lexi", password_file=password)
    return GraphConfig(backend="memgraph", memgraph=memgraph)


def test_serve_yields_a_picklable_target_that_holds_no_secret(tmp_path: Path) -> None:
    config = memgraph_config(tmp_path)
    with serve(config, tmp_path / "state", environ={}) as target:
        data = pickle.dumps(target)
    assert pickle.loads(data) == target
    assert target == GraphTarget("memgraph", "lexi", memgraph=config.memgraph)
    assert SECRET.encode() not in data
    assert SECRET not in repr(target)
    assert not (tmp_path / "state").exists()  # Memgraph keeps nothing in the state dir


def test_serve_checks_the_credentials_before_any_worker_starts(tmp_path: Path) -> None:
    config = memgraph_config(tmp_path)
    assert config.memgraph.password_file is not None
    config.memgraph.password_file.chmod(0o644)
    with (
        pytest.raises(UsageError, match="accessible to group or others"),
        serve(config, tmp_path / "state", environ={}),
    ):
        pytest.fail("serve must not yield with an unusable password file")


def test_connect_builds_a_memgraph_store_without_touching_the_network(tmp_path: Path) -> None:
    config = memgraph_config(tmp_path)
    store = connect(GraphTarget("memgraph", "lexi", memgraph=config.memgraph))
    try:
        assert isinstance(store, MemgraphGraphStore)
        assert store.where == "Memgraph at bolt://127.0.0.1:1"
    finally:
        store.close()


def test_targets_without_their_settings_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="without connection settings"):
        connect(GraphTarget("memgraph", "lexi"))
    with pytest.raises(ValueError, match="without a socket path"):
        connect(GraphTarget("falkordb", "lexi"))


def test_operator_commands_on_memgraph_take_no_run_lock(tmp_path: Path) -> None:
    graph = memgraph_config(tmp_path)
    config = Config(source=tmp_path / "lexi.toml", state_dir=tmp_path / "state", graph=graph,
                    jobs={})  # fmt: skip
    assert not embedded(graph)
    assert graph_where(config) == "Memgraph at bolt://127.0.0.1:1"
    with operator_store(config, read_during_run=True) as store:
        assert isinstance(store, MemgraphGraphStore)
    assert not (tmp_path / "state").exists()


def test_the_embedded_backend_is_described_by_its_graph_and_state_dir(tmp_path: Path) -> None:
    config = Config(source=tmp_path / "lexi.toml", state_dir=tmp_path, graph=GraphConfig(),
                    jobs={})  # fmt: skip
    assert embedded(config.graph)
    assert graph_where(config) == f"FalkorDB graph 'lexi' under {tmp_path}"
