"""The Bolt session to Memgraph through the official `neo4j` driver.

The only module that imports `neo4j` (the optional `memgraph` extra). It implements
`lexi_maint.graph.bolt.BoltSession`: explicit transactions with the configured
transaction timeout, auto-commit statements, results as plain Python values
(`plain`), and every driver error translated into `BoltError` with a `FailureKind`
(`classify`) and a message from which the password has been removed.

Why this driver: Memgraph documents it for Python; it is 7 MB with no compiled
dependencies. gqlalchemy 1.10 requires TensorFlow (about 2.2 GB, and psutil < 7), which a
memory-capped batch worker cannot afford. The driver's own retrying `execute_write` is not
used: its retries are bounded by time, not attempts, and only recognise TransientError,
while Memgraph before 2.12 reports write conflicts as ClientError; the store retries itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import neo4j
from neo4j import exceptions as neo4j_errors
from neo4j import graph as neo4j_graph
from neo4j import time as neo4j_time

from lexi_maint import __version__
from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import GraphError
from lexi_maint.graph.bolt import BoltError, FailureKind, Rows
from lexi_maint.graph.credentials import Credentials

# Lower-case fragments of Memgraph messages, checked in this order.
_NOT_WORTH_RETRYING = ("timeout", "memory limit")
_CONFLICT = (
    "cannot resolve conflicting transactions",
    "serialization error",
    "unique constraint violation",
)


def driver_options(config: MemgraphConfig) -> dict[str, Any]:
    """Keyword arguments for `neo4j.GraphDatabase.driver` (everything but URI and auth)."""
    options: dict[str, Any] = {
        "connection_timeout": config.connect_timeout,
        "connection_acquisition_timeout": config.connect_timeout + 1.0,
        "max_connection_pool_size": 4,
        "max_transaction_retry_time": 0.0,  # execute_read/write only; the store retries
        "user_agent": f"lexi-maint/{__version__}",
        "encrypted": config.tls,
    }
    if config.tls:
        options["trusted_certificates"] = (
            neo4j.TrustCustomCAs(str(config.tls_ca_file))
            if config.tls_ca_file is not None
            else neo4j.TrustSystemCAs()
        )
    return options


def auth_token(credentials: Credentials) -> tuple[str, str] | None:
    """Basic auth when there is a password (or at least a user), else no auth at all."""
    if credentials.password is not None:
        return (credentials.username, credentials.password.reveal())
    if credentials.username:
        return (credentials.username, "")
    return None


def classify(exc: BaseException) -> FailureKind:
    """Which `FailureKind` a driver or server error is."""
    if isinstance(exc, neo4j_errors.AuthError):
        return FailureKind.AUTH
    if isinstance(exc, neo4j_errors.Neo4jError):
        code = exc.code or ""
        message = (exc.message or "").lower()
        if ".Security." in code or "authentication failure" in message:
            return FailureKind.AUTH
        if any(fragment in message for fragment in _NOT_WORTH_RETRYING):
            return FailureKind.REJECTED
        if any(fragment in message for fragment in _CONFLICT):
            return FailureKind.CONFLICT
        if isinstance(exc, neo4j_errors.TransientError) or ".TransientError." in code:
            return FailureKind.TRANSIENT
        return FailureKind.REJECTED
    if isinstance(exc, neo4j_errors.ServiceUnavailable | neo4j_errors.SessionExpired | OSError):
        return FailureKind.UNAVAILABLE
    if isinstance(exc, neo4j_errors.ConnectionAcquisitionTimeoutError):
        return FailureKind.UNAVAILABLE
    return FailureKind.REJECTED


def describe(exc: BaseException) -> str:
    """The error's own words on one line: the server's message, else the driver's."""
    if isinstance(exc, neo4j_errors.Neo4jError) and exc.message:
        text = str(exc.message)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def plain(value: object) -> object:
    """A driver value as plain Python (nodes, relationships and paths become dicts)."""
    if isinstance(value, neo4j_graph.Node):
        return {"labels": sorted(value.labels), "properties": plain(dict(value.items()))}
    if isinstance(value, neo4j_graph.Relationship):
        return {"type": value.type, "properties": plain(dict(value.items()))}
    if isinstance(value, neo4j_graph.Path):
        return {
            "nodes": [plain(node) for node in value.nodes],
            "edges": [plain(rel) for rel in value.relationships],
        }
    if isinstance(
        value, neo4j_time.Date | neo4j_time.Time | neo4j_time.DateTime | neo4j_time.Duration
    ):
        return value.iso_format()  # before the tuple case: a Duration is a tuple
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@contextmanager
def _translated(credentials: Credentials) -> Iterator[None]:
    """Driver errors out as BoltError, their text without the password."""
    try:
        yield
    except BoltError:
        raise
    except (neo4j_errors.Neo4jError, neo4j_errors.DriverError, OSError) as exc:
        raise BoltError(classify(exc), credentials.redact(describe(exc))) from None


class DriverRecord(Protocol):
    """What is read of a `neo4j.Record`: its keys, and its values in the same order."""

    def keys(self) -> list[str]: ...
    def __iter__(self) -> Iterator[Any]: ...


class DriverResult(Protocol):
    """What is read of a `neo4j.Result`: its records."""

    def __iter__(self) -> Iterator[DriverRecord]: ...


class DriverTransaction(Protocol):
    """What is used of a `neo4j.Transaction`."""

    def run(self, query: str, parameters: dict[str, Any], /) -> DriverResult: ...
    def commit(self) -> None: ...
    def close(self) -> None: ...


class DriverSession(Protocol):
    """What is used of a `neo4j.Session`."""

    def begin_transaction(self, *, timeout: float | None) -> DriverTransaction: ...
    def run(self, query: neo4j.Query, parameters: dict[str, Any], /) -> DriverResult: ...
    def close(self) -> None: ...


class Driver(Protocol):
    """What is used of a `neo4j.Driver`: the narrow surface the unit tests stand in for."""

    def session(self, *, database: str | None, default_access_mode: str) -> DriverSession: ...
    def close(self) -> None: ...


def _rows(result: DriverResult) -> Rows:
    """Records as dicts (a Record is a tuple of values; its keys come separately)."""
    return [
        {str(key): plain(value) for key, value in zip(record.keys(), record, strict=True)}
        for record in result
    ]


class Neo4jTransaction:
    """A `BoltTransaction` over a neo4j explicit transaction."""

    def __init__(self, tx: DriverTransaction, credentials: Credentials) -> None:
        self._tx = tx
        self._credentials = credentials

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        with _translated(self._credentials):
            return _rows(self._tx.run(statement, dict(params)))

    def commit(self) -> None:
        with _translated(self._credentials):
            self._tx.commit()

    def rollback(self) -> None:
        with _translated(self._credentials):
            self._tx.close()  # rolls back if still open; nothing if already closed


class Neo4jSession:
    """A `BoltSession`: one driver with one session on the configured database."""

    def __init__(
        self,
        driver: Driver,
        config: MemgraphConfig,
        credentials: Credentials,
        *,
        read_only: bool = False,
    ):
        self._driver = driver
        self._credentials = credentials
        self._timeout = config.transaction_timeout
        mode = neo4j.READ_ACCESS if read_only else neo4j.WRITE_ACCESS
        self._session = driver.session(database=config.database or None, default_access_mode=mode)

    def begin(self) -> Neo4jTransaction:
        with _translated(self._credentials):
            tx = self._session.begin_transaction(timeout=self._timeout)
        return Neo4jTransaction(tx, self._credentials)

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        with _translated(self._credentials):
            query = neo4j.Query(statement, timeout=self._timeout)
            return _rows(self._session.run(query, dict(params)))

    def close(self) -> None:
        with _translated(self._credentials):
            try:
                self._session.close()
            finally:
                self._driver.close()


def open_session(
    config: MemgraphConfig, credentials: Credentials, *, read_only: bool = False
) -> Neo4jSession:
    """A session on `config.uri`; the driver connects on first use, not here."""
    try:
        driver = neo4j.GraphDatabase.driver(
            config.uri, auth=auth_token(credentials), **driver_options(config)
        )
    except (neo4j_errors.ConfigurationError, ValueError) as exc:
        detail = credentials.redact(describe(exc))
        raise GraphError(f"{config.where}: cannot set up the Bolt driver: {detail}") from None
    return Neo4jSession(driver, config, credentials, read_only=read_only)
