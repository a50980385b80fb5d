"""`lexi-maint graph init|stats|query|serve` and `verify`: the configured graph store.

`serve` runs the embedded FalkorDB server in the foreground, as the graph unit of a daemon
run (graph.serve); the other commands open the store briefly.

Memgraph runs elsewhere: these commands just connect, whether a run is going on or not.
The embedded FalkorDB server belongs to whoever holds the run lock of the state directory:
with no run going on, the command takes the lock and starts the server for itself; while a
run holds it, `stats` and `query` attach to the run's server READ-ONLY (GRAPH.RO_QUERY),
and `init` and `query --write` are refused (the run created the schema when it started).

`stats` and `query` only read: a query runs read-only unless `--write` is given, and with
no graph stored yet under state_dir they say so instead of creating an empty one.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from lexi_maint.config import Config
from lexi_maint.errors import ExitCode, GraphError, UsageError
from lexi_maint.graph import GraphStore
from lexi_maint.graph.backend import attach, embedded, session
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.reconcile import Verification, graph_documents, verify
from lexi_maint.state import StatePaths, state_lock


@contextmanager
def operator_store(
    config: Config, *, read_during_run: bool, read_only: bool = False
) -> Iterator[GraphStore]:
    """The configured store for one operator command (see the module docstring)."""
    if not embedded(config.graph):
        with session(config.graph, config.state_dir, read_only=read_only) as store:
            yield store
        return
    paths = StatePaths(config.state_dir)
    with ExitStack() as stack:
        try:
            stack.enter_context(state_lock(paths))
        except UsageError:
            if not read_during_run:
                raise
            store = stack.enter_context(attach(config.graph, paths.root))
        else:
            store = stack.enter_context(session(config.graph, paths.root, read_only=read_only))
        yield store


def nothing_stored(config: Config) -> str | None:
    """Why a read command has no graph to look at (no run stored one yet), else None."""
    if not embedded(config.graph):
        return None
    from lexi_maint.graph.falkorserver import ServerLayout

    if not ServerLayout.under(config.state_dir).root.is_dir():
        return f"no graph yet in {config.state_dir}: no run has stored anything there"
    return None


def graph_where(config: Config) -> str:
    if embedded(config.graph):
        return f"FalkorDB graph {config.graph.name!r} under {config.state_dir}"
    return config.graph.memgraph.where


def graph_init(config: Config) -> str:
    with operator_store(config, read_during_run=False) as store:
        created = store.ensure_schema()
    if not created:
        return f"{graph_where(config)}: every index and constraint exists already"
    lines = [f"{graph_where(config)}: created"]
    lines += [f"  {item}" for item in created]
    return "\n".join(lines)


def graph_stats(config: Config) -> str:
    with operator_store(config, read_during_run=True, read_only=True) as store:
        stats = store.stats()
    width = max(map(len, [*stats.nodes, *stats.relationships]), default=10) + 2
    lines = ["nodes"]
    lines += [f"  {label:<{width}}{count:>8}" for label, count in stats.nodes.items()]
    lines.append("relationships")
    lines += [f"  {rel:<{width}}{count:>8}" for rel, count in stats.relationships.items()]
    return "\n".join(lines)


def graph_query(config: Config, cypher: str, *, write: bool = False) -> str:
    """Rows as JSON lines; read-only (the engine refuses or discards writes) unless `write`."""
    with operator_store(config, read_during_run=not write, read_only=not write) as store:
        try:
            rows = store.query(cypher)
        except GraphError as exc:
            if write or "read-only" not in str(exc):
                raise
            raise GraphError(
                f"{exc} (graph query is read-only: add --write to change the graph)"
            ) from None

    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows)


def verify_job(config: Config, job_name: str) -> Verification | None:
    """Compare the job's ledger with the graph: hashes and chunk counts, both ways. None
    when the state directory has no ledger (no run yet): like every read command, verify
    creates nothing, and compares a ledger with an empty graph when no graph is stored."""
    job = config.job(job_name)
    path = StatePaths(config.state_dir).ledger
    if not path.exists():
        return None
    with Ledger.open(path) as ledger:
        records = ledger.documents(job.name)
    if nothing_stored(config) is not None:
        return verify(job.name, records, {})
    with operator_store(config, read_during_run=True) as store:
        graph = graph_documents(store, count_chunks=True)
    return verify(job.name, records, graph)


def graph_serve(config: Config) -> int:
    """Run the embedded server until SIGTERM (0) or until it exits on its own (3, for
    systemd's Restart=on-failure); READY=1 through sd_notify once it answers PING."""
    if not embedded(config.graph):
        raise UsageError(
            f"graph serve runs the embedded FalkorDB server; backend is {config.graph.backend}"
        )
    from lexi_maint.graph.serve import serve_foreground
    from lexi_maint.systemd.notify import Notifier

    notifier = Notifier()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())
    status = serve_foreground(config.state_dir, notifier.ready, stop)
    if status is None:
        notifier.stopping("FalkorDB server stopped")
        return ExitCode.OK
    return ExitCode.UNAVAILABLE
