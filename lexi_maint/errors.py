"""The exception tree of lexi-maint.

Every error that leaves an adapter is one of these; library exceptions (sqlite3, redis,
pypdf, httpx, pystemd) are translated where they are caught::

    LexiMaintError
    ├── ConfigError            configuration invalid; carries every problem (file, dotted key)
    ├── UsageError             a command was called wrongly (unknown job, bad argument)
    │   └── ApiError           a request to lexi-maintd it cannot serve (sent back to the client)
    ├── StateError             the state directory cannot be used (unwritable, full, ...)
    │   ├── LedgerError        the ledger database cannot be opened or written, or is damaged
    │   └── OwnershipError     the state directory cannot be given to the job's user
    ├── GraphError             the graph store is unreachable or rejected a write
    │   │                      (`unavailable`: it is down, full or unreachable - an outage)
    │   └── BoltError          a failed Bolt call, classified (graph/memgraph.py)
    ├── LlmError               the model API
    │   ├── LlmProbeError      the endpoint check failed, with the problem (llm/probe.py)
    │   ├── Transient          one call failed in a way the next attempt may not (llm/client.py)
    │   ├── InvalidAnswer      an answer does not say what was asked (llm/session.py)
    │   └── AnswerRejected     every answer was invalid, retries used up (llm/session.py)
    ├── SystemdError           a D-Bus call to systemd failed or a unit job did not finish
    │   ├── ResizeError        the service did not shrink or grow as asked in time
    │   └── QuiesceRefused     the service could not be shrunk as planned; the run is refused
    ├── ProcessError           leftover processes could not be stopped
    ├── DaemonError            lexi-maintd, as its clients see it
    │   ├── DaemonUnavailable  its socket does not answer
    │   └── DaemonRefused      it answered with an error
    ├── TransitionError        the lifecycle was asked to move where it may not (a bug)
    └── DocumentError          one document failed; the job goes on
        │                      (error_class names the cause for the ledger: see ErrorClass)
        ├── SchemaError        an analysis does not follow the schema (pipeline/schema.py)
        ├── JobStopError       ... for a reason every document shares (API key rejected,
        │                      account out of balance): the runner stops the whole job
        └── OutageError        ... because a dependency (graph store, model API, disk) is
                               down: not the document's fault; the runner pauses the job

Two BaseExceptions are not errors but control flow that no `except Exception` may swallow:
`Stopped` (run/stop.py: a signal ended the run) and the parser's per-page CPU limit.
Classes that carry a domain type (BoltError, LlmProbeError, Transient, InvalidAnswer,
AnswerRejected, SchemaError) live beside it, in the module named above.

A DocumentError says whether retrying can help (`retryable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class ExitCode(IntEnum):
    """Exit status of every lexi-maint process, and of a run as the daemon reports it: one
    meaning per number across the CLI, the job unit, the executor and lexi-maintd."""

    OK = 0  # all documents done or skipped; a command succeeded
    FAILED = 1  # some documents failed; a check found differences
    CONFIG = 2  # configuration invalid, wrong usage, or a run refused by preflight
    UNAVAILABLE = 3  # could not start or go on: systemd, a dependency, the state directory
    CANCELLED = 4  # a run cancelled by the operator
    BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like any filter whose reader went away


class Dependency(StrEnum):
    """What a job depends on besides its documents; an outage of one pauses the job."""

    GRAPH = "graph store"
    LLM = "model API"
    DISK = "disk"


class ErrorClass(StrEnum):
    """Why a document failed, as stored in the ledger's error_class column."""

    EMPTY = "empty"
    BINARY = "binary"
    UNREADABLE = "unreadable"
    OUTSIDE_INPUT = "outside_input"
    NOT_A_FILE = "not_a_file"
    UNSUPPORTED = "unsupported"
    PDF_ENCRYPTED = "pdf_encrypted"
    PDF_CORRUPT = "pdf_corrupt"
    PDF_NO_TEXT = "pdf_no_text"
    SCHEMA = "schema"
    GRAPH = "graph"
    KILLED = "killed"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    MISSING = "missing"
    GRAPH_MISSING = "graph_missing"  # done in the ledger, not in the graph: processed again
    INTERNAL = "internal"
    LLM_AUTH = "llm_auth"  # the model API rejected the key (HTTP 401/403)
    LLM_BALANCE = "llm_balance"  # the account has run out of balance (HTTP 402)
    LLM_BAD_REQUEST = "llm_bad_request"  # the API refused the request (HTTP 400/422)
    LLM_INVALID_OUTPUT = "llm_invalid_output"  # blank or invalid answers, retries used up
    LLM_UNAVAILABLE = "llm_unavailable"  # 429/5xx/connection errors/deadline, retries used up


class LexiMaintError(Exception):
    """Base of every error lexi-maint raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file: where it is and what is wrong."""

    file: str
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        return f"{where}: {self.message}"


class ConfigError(LexiMaintError):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(LexiMaintError):
    """A command was called with arguments that cannot work (unknown job, ...)."""


class StateError(LexiMaintError):
    """The state directory (ledger, graph data, caches, lock) cannot be used."""


class LedgerError(StateError):
    """The ledger database could not be opened, migrated or written, or is damaged."""


class GraphError(LexiMaintError):
    """The graph store could not be reached or rejected a statement.

    `unavailable` is True when the store itself is the problem (down, unreachable, out of
    disk or memory, still loading): an outage, which no document can be blamed for.
    `rejected` is True when it refused the statement or its data: the same write fails again.
    """

    def __init__(self, message: str, *, unavailable: bool = False, rejected: bool = False) -> None:
        self.unavailable = unavailable
        self.rejected = rejected  # the statement or its data was refused: retrying cannot help
        super().__init__(message)


class SystemdError(LexiMaintError):
    """A systemd D-Bus call failed, or a unit's job ended with another result than done."""


class ResizeError(SystemdError):
    """The service did not shrink or grow as asked within resize_timeout."""


class QuiesceRefused(SystemdError):
    """The service could not be shrunk as planned; it was grown back and the run refused."""


class OwnershipError(StateError):
    """The state directory cannot be given to the job's user."""


class ApiError(UsageError):
    """A request to lexi-maintd that cannot be served; the message goes back to the client."""


class DaemonError(LexiMaintError):
    """lexi-maintd, as a client sees it."""


class DaemonUnavailable(DaemonError):
    """The daemon's socket does not answer."""


class DaemonRefused(DaemonError):
    """The daemon answered with an error."""


class TransitionError(LexiMaintError):
    """A step tried to move the lifecycle where it may not go (a bug, never input)."""


class LlmError(LexiMaintError):
    """The model API: a failed call, a failed check, an answer that says nothing usable."""


class ProcessError(LexiMaintError):
    """Processes that had to be stopped are still alive."""


class DocumentError(LexiMaintError):
    """One document could not be processed; the job continues with the others."""

    def __init__(self, error_class: ErrorClass, message: str, *, retryable: bool = False) -> None:
        self.error_class = error_class
        self.message = message
        self.retryable = retryable
        super().__init__(f"{error_class.value}: {message}")


class JobStopError(DocumentError):
    """A document failed for a reason that every other document would hit too.

    The runner stops the job when a worker reports one: it starts no new documents and
    puts the ones still running back to `pending`. `retryable` says whether the document
    that saw it is left `pending` as well (True, e.g. no balance) or recorded as failed.
    """


class OutageError(DocumentError):
    """A document failed because `dependency` is down, not because of its content.

    The runner gives the attempt back, stops starting documents and probes the dependency
    until it answers again or the job's outage budget is spent.
    """

    def __init__(self, dependency: Dependency, error_class: ErrorClass, message: str) -> None:
        self.dependency = dependency
        super().__init__(error_class, message, retryable=True)
