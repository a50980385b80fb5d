"""The graph store on the embedded FalkorDB server (`lexi_maint.graph.falkorserver`).

The only module that imports `falkordb`. `FalkorGraphStore` speaks Cypher to the server
through the `falkordb` client; every redis or FalkorDB error is raised as
`lexi_maint.errors.GraphError` naming the socket. With `read_only=True` every query goes out
as GRAPH.RO_QUERY, which the server refuses to let write: operators use that to look into
the graph of a run that is going on (`lexi-maint graph stats|query`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import redis
from falkordb import Edge, FalkorDB, Node
from falkordb import Path as FalkorPath
from falkordb.exceptions import SchemaVersionMismatchException
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from lexi_maint.errors import GraphError
from lexi_maint.graph import cypher
from lexi_maint.graph.model import DocumentRow, GraphDocument, GraphPart, GraphStats

log = logging.getLogger(__name__)

DEFAULT_GRAPH = "lexi"


class FalkorGraphStore:
    """The graph store on a FalkorDB server reached through its Unix socket."""

    def __init__(
        self,
        socket_path: Path,
        graph: str = DEFAULT_GRAPH,
        *,
        timeout: float = 60.0,
        read_only: bool = False,
    ) -> None:
        self.socket_path = socket_path
        self.graph_name = graph
        self.read_only = read_only  # queries run as GRAPH.RO_QUERY; writes are refused
        try:  # the client asks the server for INFO at once
            self._db = FalkorDB(
                unix_socket_path=str(socket_path),
                socket_timeout=timeout,
                socket_connect_timeout=5.0,
                # one retry on a dropped connection; every write is idempotent
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
            )
        except redis.RedisError as exc:
            raise GraphError(
                f"FalkorDB on {socket_path} is unreachable: {exc}",
                unavailable=not isinstance(exc, redis.ResponseError) or server_trouble(str(exc)),
            ) from exc
        self._graph = self._db.select_graph(graph)

    def ensure_schema(self) -> tuple[str, ...]:
        """Create the indexes that are missing (safe to call on every start); name them.

        No uniqueness constraints: FalkorDB runs the writes to one graph one at a time, so
        two MERGEs of the same key cannot race.
        """
        existing = {
            (str(row["label"]), str(prop))
            for row in self.query(cypher.FALKORDB_LIST_INDEXES)
            for prop in _as_list(row["properties"])
        }
        created = []
        for label, prop in cypher.INDEXES:
            if (label, prop) not in existing:
                self._create_index(label, prop)
                created.append(f"index :{label}({prop})")
        return tuple(created)

    def _create_index(self, label: str, prop: str) -> None:
        try:
            self.query(cypher.falkordb_create_index(label, prop))
        except GraphError as exc:
            if "already indexed" not in str(exc):  # else another process was quicker
                raise
        log.info("index on :%s(%s) in graph %s created", label, prop, self.graph_name)

    def write_document(self, doc: GraphDocument) -> None:
        """Replace the document's previous version in one atomic query."""
        what = f"writing {doc.path}"
        self._run(cypher.FALKORDB_WRITE_DOCUMENT, cypher.write_parameters(doc), what)

    def write_document_parts(
        self, path: str, parts: Iterable[GraphPart], document: Callable[[], DocumentRow]
    ) -> None:
        """Replace a long document part by part: each part one atomic query beside the
        previous version, which one atomic query swaps for them at the end (see cypher)."""
        what = f"writing {path}"
        self._run(cypher.FALKORDB_CLEAR_STAGING, {"path": path}, what)
        try:
            for part in parts:
                self._run(cypher.FALKORDB_WRITE_PART, cypher.part_parameters(path, part), what)
            swap = {"path": path, "document": dict(document())}
            self._run(cypher.FALKORDB_SWAP_STAGED, swap, what)
        except BaseException:
            self._clear_staging(path)
            raise

    def _clear_staging(self, path: str) -> None:
        """Remove what a failed write staged, if the server lets us (else the next write of
        the path does)."""
        try:
            self._run(cypher.FALKORDB_CLEAR_STAGING, {"path": path}, f"cleaning up {path}")
        except GraphError as exc:
            log.warning("the staged rows of %s stay until its next write: %s", path, exc)

    def delete_document(self, path: str) -> None:
        """Remove a document, its chunks and the entities only it mentioned."""
        self._run(cypher.FALKORDB_DELETE_DOCUMENT, {"path": path}, f"deleting {path}")

    def stats(self) -> GraphStats:
        return cypher.parse_stats(self.query(cypher.STATS))

    def query(
        self, statement: str, params: Mapping[str, object] | None = None
    ) -> list[dict[str, object]]:
        """Run any Cypher; rows come back as dicts of plain Python values."""
        result = self._run(statement, params, "query")
        names = [str(column[1]) for column in result.header]
        return [
            {name: _plain(value) for name, value in zip(names, row, strict=True)}
            for row in result.result_set
        ]

    def close(self) -> None:
        try:
            self._db.connection.close()
        except redis.RedisError as exc:
            log.debug("closing FalkorDB connection on %s: %s", self.socket_path, exc)

    def _run(self, statement: str, params: Mapping[str, object] | None, what: str) -> Any:
        args = dict(params) if params is not None else None
        send = self._graph.ro_query if self.read_only else self._graph.query
        try:
            try:
                return send(statement, args)
            except SchemaVersionMismatchException:
                return send(statement, args)  # the client refreshed its schema
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise GraphError(
                f"FalkorDB on {self.socket_path} is unreachable ({what}): {exc}", unavailable=True
            ) from exc
        except redis.RedisError as exc:
            where = f"FalkorDB on {self.socket_path}, graph {self.graph_name!r}"
            trouble = server_trouble(str(exc))
            raise GraphError(
                f"{where}, rejected {what}: {exc}", unavailable=trouble, rejected=not trouble
            ) from exc


# Redis error prefixes that describe the server's state, not the statement: out of memory,
# cannot persist (disk full), loading its data, busy with a script, a read-only replica.
_SERVER_TROUBLE = ("OOM", "MISCONF", "LOADING", "BUSY", "READONLY", "TRYAGAIN", "MASTERDOWN")


def server_trouble(message: str) -> bool:
    """Whether a redis error reply says the server cannot work now (an outage)."""
    return message.split(" ", 1)[0] in _SERVER_TROUBLE or "No space left" in message


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _plain(value: object) -> object:
    """falkordb result values as plain Python values (nodes and edges become dicts)."""
    if isinstance(value, Node):
        return {"labels": list(value.labels or []), "properties": _plain(value.properties)}
    if isinstance(value, Edge):
        return {"type": value.relation, "properties": _plain(value.properties)}
    if isinstance(value, FalkorPath):
        return {"nodes": _plain(value.nodes()), "edges": _plain(value.edges())}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
