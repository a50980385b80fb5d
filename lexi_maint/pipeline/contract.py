"""The one contract every pipeline stage follows.

A stage takes the document's `Work` record and returns a new one with its own part filled
in; it raises `lexi_maint.errors.DocumentError` when the document cannot go on. Stages do
no scheduling, retrying or ledger writes: the runner owns those.

A worker sends the runner one `Outcome` per document (`Success` or `Failure`), its texts
cut to the bounds the ledger keeps (`bounded`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from lexi_maint.errors import ErrorClass
from lexi_maint.llm.usage import Usage
from lexi_maint.pipeline.schema import ChunkAnalysis


@dataclass(frozen=True)
class SourceFile:
    """A file selected for a job, as the runner found it on disk."""

    path: Path  # absolute path inside the job's input directory
    input_root: Path  # the job's input directory (resolved)
    sha256: str
    size: int


@dataclass(frozen=True)
class ParsedDocument:
    """Plain text of a document and what the parser learned about it."""

    title: str
    pages: int  # 0 for plain text files
    text: str
    encoding: str  # "utf-8", "cp1252", or "pdf"


@dataclass(frozen=True)
class Chunk:
    """A contiguous piece of a document's text; chunks in order reproduce the text exactly."""

    id: str
    index: int
    start: int  # character offset into ParsedDocument.text, inclusive
    end: int  # exclusive
    heading: str  # nearest section heading ("Artikel 5 Loon"), "" before the first
    text: str


@dataclass(frozen=True)
class Work:
    """Everything known about one document so far; each stage fills in its part."""

    source: SourceFile
    parsed: ParsedDocument | None = None
    chunks: tuple[Chunk, ...] = ()
    analyses: tuple[ChunkAnalysis, ...] = ()
    stored: bool = False
    warnings: tuple[str, ...] = field(default=())

    def with_warning(self, message: str) -> Work:
        return replace(self, warnings=(*self.warnings, message))

    def require_parsed(self) -> ParsedDocument:
        if self.parsed is None:
            raise RuntimeError("stage ordering error: document not parsed yet")
        return self.parsed


class Stage(Protocol):
    """A pipeline step. `name` is used for ledger timings ("parse", "chunk", ...)."""

    name: str

    def run(self, work: Work) -> Work: ...


# --- what a worker sends back for one document --------------------------------------
#
# PEAKS: `peak_rss` is the worker's ru_maxrss. A worker is forked from the runner, so that
# peak counts the runner's pages it still shares (about 40 MB), which the job's cgroup
# holds once, not once per worker. `peak_own` is ru_maxrss less the resident memory the
# worker shares with other processes when the document ends: the memory plan's per-worker
# figure. It never under-counts the worker's own peak as long as shared pages only turn
# private (copy-on-write) or go away after the peak, which is how a forked worker's pages
# go; a page it maps first and a sibling maps later is a file page, held once. None where
# /proc/self/smaps_rollup cannot be read.


@dataclass(frozen=True)
class Success:
    chunks: int
    timings: Mapping[str, float]
    peak_rss: int | None
    warnings: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    peak_own: int | None = None  # peak_rss less what the worker shared at the end (PEAKS)


@dataclass(frozen=True)
class Failure:
    error_class: ErrorClass
    message: str
    retryable: bool
    timings: Mapping[str, float] = field(default_factory=dict)
    peak_rss: int | None = None
    warnings: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    stop_job: bool = False  # every document would fail like this: the runner stops the job
    outage: str = ""  # a Dependency's value when a dependency, not the document, failed
    peak_own: int | None = None


Outcome = Success | Failure


MAX_MESSAGE = 2048  # characters of an error message or a warning kept in the ledger
MAX_WARNINGS = 20  # warnings kept per document


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    """`message` cut to `limit` characters, saying how much was cut."""
    if len(message) <= limit:
        return message
    return message[:limit] + f" … ({len(message) - limit} more characters)"


def bounded_warnings(warnings: Sequence[str]) -> list[str]:
    kept = [bounded(w) for w in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        kept.append(f"… and {len(warnings) - MAX_WARNINGS} more warnings")
    return kept
