"""Choosing and opening the configured graph backend.

`serve(config, state_dir)` runs for the whole job in the runner process and yields a
picklable `GraphTarget`; `connect(target)` is called in each worker to get a `GraphStore`.

- falkordb: `serve` starts (and at the end stops) the embedded server; the target names its
  Unix socket. In a daemon run the server runs in its own unit (`GRAPH_UNIT_ENV` names it):
  `serve` waits until it answers and attaches; the probe checks it but does not revive it
  (systemd does).
- memgraph: the server runs elsewhere; `serve` reads the credentials once, so a missing or
  unreadable password file stops the run before any document starts, and the target
  carries the (non-secret) connection settings. Each process reads the password itself.

`session(config, state_dir)` is a store for a short operator command; `attach(config,
state_dir)` is a read-only store on the FalkorDB server of a run that is going on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lexi_maint.config.graph import GraphConfig, MemgraphConfig
from lexi_maint.errors import GraphError
from lexi_maint.graph import GraphStore
from lexi_maint.graph.credentials import load_credentials
from lexi_maint.probe import Health, Probe
from lexi_maint.state import GRAPH_UNIT_ENV

log = logging.getLogger(__name__)

# seconds a job unit waits for its graph unit's server to answer (the daemon started that
# unit and waited for its READY=1 first: this covers a restart in between)
ATTACH_TIMEOUT = 60.0


@dataclass(frozen=True)
class GraphTarget:
    """Where workers write: everything a worker needs to connect, and nothing secret."""

    backend: str
    graph: str
    socket_path: Path | None = None  # falkordb: the embedded server's Unix socket
    memgraph: MemgraphConfig | None = None  # memgraph: where and how to connect


def embedded(config: GraphConfig) -> bool:
    """True when lexi-maint runs the graph server itself (under the state directory)."""
    return config.backend == "falkordb"


@dataclass(frozen=True)
class ServedGraph:
    """The graph a run writes to, and the probe that checks it (and revives FalkorDB)."""

    target: GraphTarget
    health: Probe


@contextmanager
def serve(
    config: GraphConfig, state_dir: Path, environ: Mapping[str, str] = os.environ
) -> Iterator[GraphTarget]:
    with serve_probed(config, state_dir, environ) as served:
        yield served.target


@contextmanager
def serve_probed(
    config: GraphConfig, state_dir: Path, environ: Mapping[str, str] = os.environ
) -> Iterator[ServedGraph]:
    if config.backend == "memgraph":
        load_credentials(config.memgraph, environ)  # fail now, not in every worker
        target = GraphTarget(config.backend, config.name, memgraph=config.memgraph)
        yield ServedGraph(target, lambda: answers(target))
        return
    unit = environ.get(GRAPH_UNIT_ENV, "")
    if unit:  # a daemon run: the server runs in its own unit, beside this job unit
        from lexi_maint.graph.falkorserver import ServerLayout, server_health, wait_answering

        layout = ServerLayout.under(state_dir)
        waited = wait_answering(layout, ATTACH_TIMEOUT, unit)
        log.info("attached to the FalkorDB server of %s on %s after %.3f s", unit,
                 layout.socket, waited)  # fmt: skip
        target = GraphTarget(config.backend, config.name, socket_path=layout.socket)
        yield ServedGraph(target, lambda: server_health(layout))
        return
    from lexi_maint.graph.falkorserver import FalkorServer

    with FalkorServer(state_dir) as server:
        target = GraphTarget(config.backend, config.name, socket_path=server.socket_path)
        yield ServedGraph(target, server.health)


def answers(target: GraphTarget) -> Health:
    """Probe a graph store lexi-maint does not run: connect and run a trivial query."""
    try:
        store = connect(target)
        try:
            store.query("RETURN 1")
        finally:
            store.close()
    except GraphError as exc:
        if exc.unavailable:
            return Health(False, str(exc))
    return Health(True)


def connect(target: GraphTarget, *, read_only: bool = False) -> GraphStore:
    """`read_only`: queries cannot change the graph (FalkorDB's GRAPH.RO_QUERY; on Memgraph
    a read session whose transactions are rolled back)."""
    if target.backend == "memgraph":
        from lexi_maint.graph.memgraph import open_memgraph_store

        if target.memgraph is None:
            raise ValueError("memgraph target without connection settings")
        return open_memgraph_store(target.memgraph, read_only=read_only)
    from lexi_maint.graph.falkordb import FalkorGraphStore

    if target.socket_path is None:
        raise ValueError("falkordb target without a socket path")
    return FalkorGraphStore(target.socket_path, target.graph, read_only=read_only)


@contextmanager
def session(
    config: GraphConfig, state_dir: Path, *, read_only: bool = False
) -> Iterator[GraphStore]:
    """A store for a short operator command (stats, query, schema setup)."""
    with serve(config, state_dir) as target:
        store = connect(target, read_only=read_only)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def attach(config: GraphConfig, state_dir: Path) -> Iterator[GraphStore]:
    """A READ-ONLY store on the embedded server that a running job started.

    For operators who look into the graph while a run owns it: queries run as
    GRAPH.RO_QUERY, so nothing they type can change what the run is writing.
    """
    from lexi_maint.graph.falkordb import FalkorGraphStore
    from lexi_maint.graph.falkorserver import ServerLayout

    socket = ServerLayout.under(state_dir).socket
    if not socket.exists():
        raise GraphError(
            f"a lexi-maint run holds {state_dir} but its FalkorDB server has no socket at "
            f"{socket} (yet); try again in a moment"
        )
    store = FalkorGraphStore(socket, config.name, read_only=True)
    try:
        yield store
    finally:
        store.close()
