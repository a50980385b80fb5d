"""Pipeline stage "store": write the document's graph (replacing any previous version)."""

from __future__ import annotations

import logging
from dataclasses import replace

from lexi_maint.errors import Dependency, DocumentError, ErrorClass, GraphError, OutageError
from lexi_maint.graph import GraphStore
from lexi_maint.pipeline.contract import Work
from lexi_maint.pipeline.graphdoc import build_graph_document

log = logging.getLogger(__name__)


class StoreStage:
    """Builds the document's rows and writes them in one call to the graph store."""

    name = "store"

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def run(self, work: Work) -> Work:
        doc = build_graph_document(work)
        try:
            self.store.write_document(doc)
        except GraphError as exc:
            if exc.unavailable:  # the store is down or full: not this document's fault
                raise OutageError(Dependency.GRAPH, ErrorClass.GRAPH, str(exc)) from exc
            # refused for its content: the same write fails again, so it is not retried
            raise DocumentError(ErrorClass.GRAPH, str(exc), retryable=not exc.rejected) from exc
        log.debug(
            "stored %s: %d chunks, %d mentions, %d references",
            doc.path,
            len(doc.chunks),
            len(doc.mentions),
            len(doc.references),
        )
        if doc.unresolved_references:
            work = work.with_warning(
                f"{doc.unresolved_references} reference(s) to articles without a matching "
                "heading in this document were not linked"
            )
        return replace(work, stored=True)
