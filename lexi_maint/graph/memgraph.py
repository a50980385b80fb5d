"""Memgraph: the graph store on a Memgraph server, written through a narrow Bolt port.

`MemgraphGraphStore` holds the logic: transactions, retries, batching and messages. It talks
to the server only through `BoltSession`/`BoltTransaction` (below), whose one real
implementation is `lexi_maint.graph.neo4jbolt` (the official neo4j driver); unit tests put a
fake session behind the same port. Errors cross the port as `BoltError` with a
`FailureKind`, and leave the store as `lexi_maint.errors.GraphError` naming the server's URI
(never a credential).

Writing one document is ONE explicit write transaction::

    MERGE_DOCUMENT       the Document node, keyed by path
    STALE_ENTITIES       the keys of the entities the old chunks mention
    DELETE_OLD_CHUNKS    the old version's chunks and their relationships
    write_plan           UNWIND batches of `batch_size` rows, nodes before relationships
    orphan_plan          the stale entities that nothing mentions any more
    COMMIT

If a statement or the commit fails, the transaction is rolled back, so the previous version
stays whole: the graph never holds half a document. A write-write conflict ("Cannot
resolve conflicting transactions", a serialization error, or a uniqueness violation when two
workers MERGE the same new entity), another transient server error, or a lost connection
makes the store roll back, wait (`RetryPolicy.delay`, jittered) and run the whole
transaction again, at most `max_attempts` times. Rejected statements and rejected
credentials are not retried.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import GraphError, UsageError
from lexi_maint.graph import cypher
from lexi_maint.graph.bolt import BoltError, BoltSession, BoltTransaction, FailureKind, Rows
from lexi_maint.graph.credentials import Credentials, load_credentials
from lexi_maint.graph.model import GraphDocument, GraphStats

log = logging.getLogger(__name__)

T = TypeVar("T")

_HINTS = {
    "properties on edges": "start Memgraph with --storage-properties-on-edges=true "
    "(REFERS_TO carries the article number)",
    "memory limit": "raise Memgraph's --memory-limit or lower [graph.memgraph] batch_size",
}


class MemgraphGraphStore:
    """The GraphStore on Memgraph (see the module docstring for the write transaction)."""

    def __init__(
        self,
        session: BoltSession,
        config: MemgraphConfig,
        credentials: Credentials,
        *,
        dialect: cypher.Dialect = cypher.MEMGRAPH,
        sleep: Callable[[float], None] = time.sleep,
        draw: Callable[[], float] = random.random,
        read_only: bool = False,
    ) -> None:
        self.read_only = read_only  # `query` runs in a transaction that is rolled back
        self._session = session
        self._config = config
        self._credentials = credentials
        self._dialect = dialect
        self._sleep = sleep
        self._draw = draw

    @property
    def where(self) -> str:
        return self._config.where

    # --- the GraphStore port -------------------------------------------------------------

    def ensure_schema(self) -> tuple[str, ...]:
        """Create the missing indexes and uniqueness constraints; name what was created.

        Index DDL runs in auto-commit transactions (Memgraph refuses it inside explicit
        ones). "already exists" from a concurrent `graph init` is not an error.
        """
        indexes = index_keys(self._autocommit(cypher.MEMGRAPH_SHOW_INDEXES, {}, "listing indexes"))
        uniques = unique_keys(
            self._autocommit(cypher.MEMGRAPH_SHOW_CONSTRAINTS, {}, "listing constraints")
        )
        created: list[str] = []
        for label, prop in cypher.INDEXES:
            if (label, prop) not in indexes:
                self._ddl(cypher.memgraph_create_index(label, prop), f"index :{label}({prop})")
                created.append(f"index :{label}({prop})")
        for label, prop in cypher.UNIQUE_KEYS:
            if (label, prop) not in uniques:
                self._ddl(cypher.memgraph_create_unique(label, prop), f"unique :{label}({prop})")
                created.append(f"unique :{label}({prop})")
        return tuple(created)

    def write_document(self, doc: GraphDocument) -> None:
        """Replace the document's previous version in one transaction (retried as a whole)."""
        plan = cypher.write_plan(doc, self._dialect, self._config.batch_size)
        path = {"path": doc.path}

        def replace(tx: BoltTransaction) -> None:
            tx.run(cypher.MERGE_DOCUMENT, {**path, "document": dict(doc.document)})
            stale = cypher.stale_entities(tx.run(cypher.STALE_ENTITIES, path))
            tx.run(cypher.DELETE_OLD_CHUNKS, path)
            for statement in plan:
                tx.run(statement.text, statement.params)
            self._delete_orphans(tx, stale)

        self._transaction(replace, f"writing {doc.path}")
        log.debug("%s: wrote %s in %d batched statements", self.where, doc.path, len(plan))

    def delete_document(self, path: str) -> None:
        """Remove a document, its chunks and the entities only it mentioned."""
        params = {"path": path}

        def delete(tx: BoltTransaction) -> None:
            stale = cypher.stale_entities(tx.run(cypher.STALE_ENTITIES, params))
            tx.run(cypher.DELETE_OLD_CHUNKS, params)
            tx.run(cypher.DELETE_DOCUMENT_NODE, params)
            self._delete_orphans(tx, stale)

        self._transaction(delete, f"deleting {path}")

    def stats(self) -> GraphStats:
        return cypher.parse_stats(self._autocommit(cypher.STATS, {}, "counting"))

    def query(self, statement: str, params: Mapping[str, object] | None = None) -> Rows:
        """Run any Cypher in an auto-commit transaction (retried on transient errors).

        Read-only: in an explicit transaction that is always rolled back, on a session opened
        for reading, so whatever the statement writes never becomes visible.
        """
        if self.read_only:
            return self._retrying(lambda: self._read(statement, params or {}), "query")
        return self._autocommit(statement, params or {}, "query")

    def _read(self, statement: str, params: Mapping[str, object]) -> Rows:
        tx = self._session.begin()
        try:
            return tx.run(statement, params)
        finally:
            self._rollback(tx)

    def close(self) -> None:
        try:
            self._session.close()
        except BoltError as exc:
            log.debug("%s: closing the session: %s", self.where, exc.message)

    # --- transactions and retries --------------------------------------------------------

    def _delete_orphans(self, tx: BoltTransaction, stale: Mapping[str, Sequence[str]]) -> None:
        for statement in cypher.orphan_plan(self._dialect, stale, self._config.batch_size):
            tx.run(statement.text, statement.params)

    def _transaction(self, work: Callable[[BoltTransaction], T], what: str) -> T:
        return self._retrying(lambda: self._attempt(work), what)

    def _attempt(self, work: Callable[[BoltTransaction], T]) -> T:
        """One try: begin, work, commit; roll back on any failure, keeping its error."""
        tx = self._session.begin()
        try:
            result = work(tx)
            tx.commit()
        except BaseException:
            self._rollback(tx)
            raise
        return result

    def _rollback(self, tx: BoltTransaction) -> None:
        try:
            tx.rollback()
        except BoltError as exc:  # the connection may be gone; the server rolls back itself
            log.debug("%s: rollback failed: %s", self.where, exc.message)

    def _autocommit(self, statement: str, params: Mapping[str, object], what: str) -> Rows:
        return self._retrying(lambda: self._session.run(statement, params), what)

    def _ddl(self, statement: str, what: str) -> None:
        try:
            self._autocommit(statement, {}, f"creating {what}")
        except GraphError as exc:
            if "already exists" not in str(exc).lower():  # else a concurrent init made it
                raise
        log.info("%s: created %s", self.where, what)

    def _retrying(self, call: Callable[[], T], what: str) -> T:
        policy = self._config.retry
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return call()
            except BoltError as exc:
                if not exc.kind.retryable or attempt == policy.max_attempts:
                    raise GraphError(
                        self._message(exc, what, attempt),
                        unavailable=exc.kind is FailureKind.UNAVAILABLE,
                        rejected=exc.kind is FailureKind.REJECTED,
                    ) from None
                delay = policy.delay(attempt, self._draw())
                log.info(  # routine under concurrent writers: not a warning
                    "%s: %s failed (%s, attempt %d of %d); retrying in %.2f s: %s",
                    self.where,
                    what,
                    exc.kind.value,
                    attempt,
                    policy.max_attempts,
                    delay,
                    self._credentials.redact(exc.message),
                )
                self._sleep(delay)
        raise AssertionError("unreachable: max_attempts is at least 1")

    def _message(self, exc: BoltError, what: str, attempts: int) -> str:
        detail = self._credentials.redact(exc.message)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if exc.kind is FailureKind.AUTH:
            user = self._credentials.username
            who = f"user {user!r}" if user else "a connection without credentials"
            return f"{self.where} rejected {who} ({what}): {detail}"
        if exc.kind is FailureKind.UNAVAILABLE:
            return f"{self.where} is unreachable ({what}){tries}: {detail}"
        if exc.kind.retryable:
            return f"{self.where} kept failing {what} ({exc.kind.value}){tries}: {detail}"
        hints = [hint for marker, hint in _HINTS.items() if marker in detail.lower()]
        return f"{self.where} rejected {what}: {detail}" + "".join(f"; {h}" for h in hints)


def index_keys(rows: Sequence[Mapping[str, object]]) -> set[tuple[str, str]]:
    """(label, property) of the single-property label+property indexes in SHOW INDEX INFO."""
    keys = set()
    for row in rows:
        kind = str(row.get("index type", ""))
        prop = _single_property(row.get("property"))
        if kind.startswith("label+property") and prop is not None:
            keys.add((str(row.get("label")), prop))
    return keys


def unique_keys(rows: Sequence[Mapping[str, object]]) -> set[tuple[str, str]]:
    """(label, property) of the single-property uniqueness constraints in SHOW CONSTRAINT INFO."""
    keys = set()
    for row in rows:
        prop = _single_property(row.get("properties"))
        if row.get("constraint type") == "unique" and prop is not None:
            keys.add((str(row.get("label")), prop))
    return keys


def _single_property(value: object) -> str | None:
    """The property of a one-property index or constraint: "name", ["name"]; else None.

    Memgraph 2.x shows properties as a string ("name, address"), 3.x as a list.
    """
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",")]
    elif isinstance(value, list):
        parts = [str(part) for part in value]
    else:
        return None
    return parts[0] if len(parts) == 1 and parts[0] else None


def open_memgraph_store(
    config: MemgraphConfig, environ: Mapping[str, str] = os.environ, *, read_only: bool = False
) -> MemgraphGraphStore:
    """Read the credentials, open a Bolt session (lazily connected) and wrap it in the store."""
    credentials = load_credentials(config, environ)
    try:
        from lexi_maint.graph.neo4jbolt import open_session
    except ImportError as exc:
        raise UsageError(
            f"[graph] backend = 'memgraph' needs the neo4j driver ({exc}); "
            "install it with: pip install 'lexi-maint[memgraph]'"
        ) from None
    session = open_session(config, credentials, read_only=read_only)
    return MemgraphGraphStore(session, config, credentials, read_only=read_only)
