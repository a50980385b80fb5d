"""The `[graph]` section of the configuration, and its `[graph.memgraph]` table.

`backend = "falkordb"` (the default) runs the embedded FalkorDB server and needs nothing
else; `backend = "memgraph"` writes to a Memgraph server over Bolt with the settings of
`[graph.memgraph]`. The password is never a key: it is read from a credential file at
connection time (see `lexi_maint.graph.credentials`). Every key is documented in
config/lexi-maint.toml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lexi_maint.config.table import Table

GRAPH_NAME = re.compile(r"[A-Za-z0-9_-]+")
DATABASE_NAME = re.compile(r"[A-Za-z0-9_.-]*")
BACKENDS = ("falkordb", "memgraph")
URI_SCHEMES = ("bolt", "neo4j")
_TLS_SCHEMES = ("bolt+s", "bolt+ssc", "neo4j+s", "neo4j+ssc")
DEFAULT_URI = "bolt://localhost:7687"


@dataclass(frozen=True)
class RetryPolicy:
    """How often one transaction is tried, and how long to wait in between.

    The wait before retry n (1, 2, ...) is drawn from [cap/2, cap] with
    cap = min(backoff_max, backoff_initial * 2**(n-1)): growing, and jittered so that
    workers that collided do not collide again in step.
    """

    max_attempts: int = 8
    backoff_initial: float = 0.05  # seconds
    backoff_max: float = 2.0

    def delay(self, retry: int, draw: float) -> float:
        """Seconds to wait before retry number `retry` (1-based); `draw` is uniform in [0, 1)."""
        cap = min(self.backoff_max, self.backoff_initial * 2.0 ** (retry - 1))
        return cap / 2 + draw * cap / 2


@dataclass(frozen=True)
class MemgraphConfig:
    """Where and how to reach Memgraph. Nothing secret: the password stays in its file."""

    uri: str = DEFAULT_URI
    username: str = ""
    password_file: Path | None = None
    database: str = ""  # "" = the server's default database
    tls: bool = False
    tls_ca_file: Path | None = None  # trust this CA (PEM) instead of the system store
    batch_size: int = 1000  # rows per UNWIND statement
    connect_timeout: float = 10.0
    transaction_timeout: float = 600.0  # sent with each transaction (Memgraph >= 2.10)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def where(self) -> str:
        """The server as messages name it: URI and database, never a credential."""
        database = f", database {self.database!r}" if self.database else ""
        return f"Memgraph at {self.uri}{database}"


@dataclass(frozen=True)
class GraphConfig:
    backend: str = "falkordb"
    name: str = "lexi"  # the graph's name inside FalkorDB (Memgraph: see memgraph.database)
    memgraph: MemgraphConfig = field(default_factory=MemgraphConfig)


def parse_graph(top: Table) -> GraphConfig:
    with top.sub("graph") as t:
        backend = t.choice("backend", BACKENDS, "falkordb")
        name = t.string("name", "lexi", pattern=GRAPH_NAME)
        memgraph = _memgraph(t)
    return GraphConfig(backend=backend, name=name, memgraph=memgraph)


def _memgraph(graph: Table) -> MemgraphConfig:
    d = MemgraphConfig()
    with graph.sub("memgraph") as t:
        uri = _uri(t)
        username = t.string("username", d.username)
        password_file = t.path("password_file", None) if t.has("password_file") else None
        database = t.string("database", d.database, pattern=DATABASE_NAME)
        tls = t.boolean("tls", d.tls)
        ca_file = t.path("tls_ca_file", None) if t.has("tls_ca_file") else None
        if ca_file is not None and not tls:
            t.problem("tls_ca_file", "is only used with tls = true; set tls = true or remove it")
        batch_size = t.integer("batch_size", d.batch_size, low=1, high=1_000_000)
        connect = t.number("connect_timeout", d.connect_timeout, low=0.1, high=3600.0)
        transaction = t.number("transaction_timeout", d.transaction_timeout, low=1.0, high=86400.0)
        retry = _retry(t)
    return MemgraphConfig(
        uri=uri,
        username=username,
        password_file=password_file,
        database=database,
        tls=tls,
        tls_ca_file=ca_file,
        batch_size=batch_size,
        connect_timeout=connect,
        transaction_timeout=transaction,
        retry=retry,
    )


def _uri(t: Table) -> str:
    uri = t.string("uri", DEFAULT_URI)
    problem = uri_problem(uri)
    if problem is not None:
        t.problem("uri", problem)
        return DEFAULT_URI
    return uri


def uri_problem(uri: str) -> str | None:
    """Why `uri` is not a usable Bolt URI, or None. Never repeats a credential it contains."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "is not a URI such as 'bolt://memgraph.example:7687'"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials: set username and password_file instead"
    if parts.scheme in _TLS_SCHEMES:
        plain = parts.scheme.split("+")[0]
        return f"write {plain}:// and set tls = true (and tls_ca_file for a private CA)"
    if parts.scheme not in URI_SCHEMES:
        return f"must start with bolt:// or neo4j://, got {parts.scheme or 'no'} scheme"
    if not parts.hostname:
        return "names no host; write e.g. 'bolt://memgraph.example:7687'"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be just scheme, host and port (the database is a separate key)"
    if port == 0:
        return "port 0 is not a port"
    return None


def _retry(t: Table) -> RetryPolicy:
    d = RetryPolicy()
    attempts = t.integer("max_attempts", d.max_attempts, low=1, high=100)
    initial = t.number("backoff_initial", d.backoff_initial, low=0.0, high=60.0)
    most = t.number("backoff_max", d.backoff_max, low=0.0, high=600.0)
    if most < initial:
        t.problem("backoff_max", f"must be at least backoff_initial ({most:g} < {initial:g})")
        most = initial
    return RetryPolicy(max_attempts=attempts, backoff_initial=initial, backoff_max=most)
