"""Ledger and graph checked against each other, by content hash.

A document the ledger calls `done` must be in the graph with the same sha256. The graph's
data can be lost behind the ledger's back (FalkorDB's append-only file deleted or cut short,
the graph wiped by hand): then the ledger would skip those documents as unchanged forever.

- `missing_from_graph` is the cheap check at the start of every run (one query listing the
  graph's documents and their hashes); what it finds goes back to `pending`.
- `verify` is the full check behind `lexi-maint verify JOB`: hashes and chunk counts both
  ways, including documents in the graph that the ledger does not call done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lexi_maint.graph import GraphStore
from lexi_maint.graph.cypher import DOCUMENT_CHUNKS, DOCUMENT_HASHES
from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import Status


@dataclass(frozen=True)
class GraphEntry:
    sha256: str
    chunks: int | None = None  # None when not counted


def graph_documents(store: GraphStore, *, count_chunks: bool = False) -> dict[str, GraphEntry]:
    """path -> what the graph holds for it."""
    rows = store.query(DOCUMENT_CHUNKS if count_chunks else DOCUMENT_HASHES)
    return {
        str(row["path"]): GraphEntry(
            str(row.get("sha256") or ""),
            _int(row["chunks"]) if count_chunks else None,
        )
        for row in rows
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def missing_from_graph(
    records: Sequence[DocumentRecord], graph: Mapping[str, GraphEntry]
) -> list[str]:
    """Paths the ledger calls done whose content is not in the graph (pure)."""
    return [
        r.path
        for r in records
        if r.status is Status.DONE and (r.path not in graph or graph[r.path].sha256 != r.sha256)
    ]


@dataclass(frozen=True)
class Verification:
    job: str
    checked: int  # documents done in the ledger
    missing: tuple[str, ...] = ()  # done in the ledger, absent from the graph
    stale: tuple[str, ...] = ()  # in the graph with another sha256
    hashes: tuple[tuple[str, str], ...] = ()  # per stale path: (ledger, graph) sha256
    chunk_mismatch: tuple[tuple[str, int | None, int | None], ...] = ()  # path, ledger, graph
    not_done: tuple[tuple[str, str], ...] = field(default=())  # in the graph; ledger status

    @property
    def consistent(self) -> bool:
        return not (self.missing or self.stale or self.chunk_mismatch)

    def render(self) -> str:
        lines = [f"job {self.job}: {self.checked} documents done in the ledger"]
        for path in self.missing:
            lines.append(f"  missing from the graph: {path}")
        for path, (in_ledger, in_graph) in zip(self.stale, self.hashes, strict=True):
            lines.append(
                f"  other content in the graph (sha256 differs): {path}"
                f" (ledger {in_ledger[:12] or '-'}, graph {in_graph[:12] or '-'})"
            )
        for path, ledger, graph in self.chunk_mismatch:
            lines.append(f"  chunks: ledger {ledger}, graph {graph}: {path}")
        for path, status in self.not_done:
            lines.append(f"  in the graph, {status} in the ledger: {path}")
        if self.consistent:
            lines.append("  ledger and graph agree")
        else:
            lines.append(f"  `lexi-maint run {self.job}` processes the differing ones again")
        return "\n".join(lines)


def verify(
    job: str, records: Sequence[DocumentRecord], graph: Mapping[str, GraphEntry]
) -> Verification:
    """Compare every document of the job both ways (pure)."""
    done = [r for r in records if r.status is Status.DONE]
    missing = tuple(r.path for r in done if r.path not in graph)
    stale = tuple(r.path for r in done if r.path in graph and graph[r.path].sha256 != r.sha256)
    chunks = tuple(
        (r.path, r.chunks, graph[r.path].chunks)
        for r in done
        if r.path in graph and r.path not in stale and graph[r.path].chunks != r.chunks
    )
    not_done = tuple(
        (r.path, r.status.value) for r in records if r.status is not Status.DONE and r.path in graph
    )
    hashes = tuple(
        (r.sha256, graph[r.path].sha256) for r in done if r.path in graph and r.path in stale
    )
    return Verification(job, len(done), missing, stale, hashes, chunks, not_done)
