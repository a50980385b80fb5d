"""The Bolt port: what the Memgraph store needs from a Bolt connection, and how a failed
call is classified. `lexi_maint.graph.neo4jbolt` implements it with the official neo4j
driver; unit tests implement it with a fake. Both raise only `BoltError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from lexi_maint.errors import GraphError

Rows = list[dict[str, object]]


class FailureKind(StrEnum):
    """Why a Bolt call failed, as far as retrying is concerned."""

    CONFLICT = "conflict"  # write-write conflict with another transaction
    TRANSIENT = "transient"  # the server says: try again
    UNAVAILABLE = "unavailable"  # no connection, or it broke
    AUTH = "auth"  # the credentials were rejected
    REJECTED = "rejected"  # the statement or its data was refused

    @property
    def retryable(self) -> bool:
        return self in (FailureKind.CONFLICT, FailureKind.TRANSIENT, FailureKind.UNAVAILABLE)


class BoltError(GraphError):
    """A failed Bolt call, classified; `message` is already free of credentials."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(f"{kind.value}: {message}")


class BoltTransaction(Protocol):
    """One open explicit transaction."""

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        """Run one statement; its rows as dicts of plain Python values."""
        ...

    def commit(self) -> None: ...

    def rollback(self) -> None:
        """Roll back; a no-op if the transaction is already closed."""


class BoltSession(Protocol):
    """The connection to one database; every method raises BoltError on failure."""

    def begin(self) -> BoltTransaction: ...

    def run(self, statement: str, params: Mapping[str, object]) -> Rows:
        """Run one statement in its own (auto-commit) transaction."""
        ...

    def close(self) -> None: ...
