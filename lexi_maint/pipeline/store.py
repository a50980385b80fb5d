"""Pipeline stage "store": write the document's graph (replacing any previous version)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from lexi_maint.errors import Dependency, DocumentError, ErrorClass, GraphError, OutageError
from lexi_maint.graph import GraphStore
from lexi_maint.graph.model import DocumentRow, GraphPart
from lexi_maint.pipeline.contract import Work
from lexi_maint.pipeline.graphdoc import (
    MAX_PENDING_REFERENCES,
    PartBuilder,
    build_graph_document,
    storable,
)

log = logging.getLogger(__name__)


PART_CHUNKS = 500
"""A document with more chunks is written in parts of this many (`write_document_parts`)."""


class StoreStage:
    """Builds the document's rows and writes them in one call to the graph store, or in
    parts of `PART_CHUNKS` chunks (never one payload of a long document's whole text)."""

    name = "store"

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def run(self, work: Work) -> Work:
        if len(work.chunks) > PART_CHUNKS:
            return self._run_in_parts(work)
        doc = build_graph_document(work)
        with translated_graph_errors():
            self.store.write_document(doc)
        log.debug(
            "stored %s: %d chunks, %d mentions, %d references",
            doc.path,
            len(doc.chunks),
            len(doc.mentions),
            len(doc.references),
        )
        if doc.unresolved_references:
            work = work.with_warning(unresolved_warning(doc.unresolved_references))
        return replace(work, stored=True)

    def _run_in_parts(self, work: Work) -> Work:
        parsed = work.require_parsed()
        builder = PartBuilder()
        path = str(work.source.path)
        row = DocumentRow(path=path, sha256=work.source.sha256, title=storable(parsed.title),
                          pages=parsed.pages)  # fmt: skip
        self.write_parts(path, builder.parts(work, PART_CHUNKS), lambda: row)
        log.debug("stored %s in parts: %d chunks", path, builder.chunks)
        for warning in part_warnings(builder):
            work = work.with_warning(warning)
        return replace(work, stored=True)

    def write_parts(
        self, path: str, parts: Iterable[GraphPart], document: Callable[[], DocumentRow]
    ) -> None:
        """A long document's rows, part by part (`GraphStore.write_document_parts`)."""
        with translated_graph_errors():
            self.store.write_document_parts(path, parts, document)


def unresolved_warning(count: int) -> str:
    return (
        f"{count} reference(s) to articles without a matching heading in this document"
        " were not linked"
    )


def part_warnings(builder: PartBuilder) -> Iterator[str]:
    """What a document written in parts warns of: references it could not link."""
    if builder.unresolved_references:
        yield unresolved_warning(builder.unresolved_references)
    if builder.dropped_references:
        yield (
            f"{builder.dropped_references} reference(s) beyond the first"
            f" {MAX_PENDING_REFERENCES:,} of this document were not linked"
        )


@contextmanager
def translated_graph_errors() -> Iterator[None]:
    """A GraphError as the document's failure: an outage when the store is down or full,
    else a (retryable unless refused for its content) graph error of the document."""
    try:
        yield
    except GraphError as exc:
        if exc.unavailable:  # the store is down or full: not this document's fault
            raise OutageError(Dependency.GRAPH, ErrorClass.GRAPH, str(exc)) from exc
        # refused for its content: the same write fails again, so it is not retried
        raise DocumentError(ErrorClass.GRAPH, str(exc), retryable=not exc.rejected) from exc
