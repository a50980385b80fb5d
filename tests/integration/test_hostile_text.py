"""Untrusted text stays text: NUL in a document's text reaches the graph as U+FFFD, and a
statement the store refuses for its content fails the document once, without retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexi_maint.errors import DocumentError, GraphError
from lexi_maint.graph import FakeGraphStore
from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.pipeline.contract import ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.store import StoreStage
from tests.integration.graph_cases import make_doc

pytestmark = pytest.mark.integration


def test_nul_in_text_headings_and_terms_is_stored_as_a_replacement_character(
    graph_store: FalkorGraphStore,
) -> None:
    doc = make_doc("/in/nul.txt", [("Artikel\x001", "Artikel 1\nloon\x00 en meer\n",
                                    ["wer\x00knemer"], [])])  # fmt: skip
    graph_store.write_document(doc)
    rows = graph_store.query(
        "MATCH (d:Document {path: '/in/nul.txt'})-[:HAS_CHUNK]->(c)-[:MENTIONS]->(t:Term)"
        " RETURN c.text AS text, c.heading AS heading, t.name AS term"
    )
    assert rows == [
        {
            "text": "Artikel 1\nloon\ufffd en meer\n",
            "heading": "Artikel\ufffd1",
            "term": "wer\ufffdknemer",
        }
    ]


def test_falkordb_refuses_a_raw_nul_and_says_so_as_a_rejection(
    graph_store: FalkorGraphStore,
) -> None:
    with pytest.raises(GraphError) as caught:
        graph_store.query("CREATE (:Probe {text: $text})", {"text": "a\x00b"})
    assert caught.value.rejected and not caught.value.unavailable


def test_a_rejected_write_is_not_retried(tmp_path: Path) -> None:
    store = FakeGraphStore()
    store.failure = GraphError("rejected writing /in/a.txt: bad value", rejected=True)
    source = SourceFile(tmp_path / "a.txt", tmp_path, "0" * 64, 1)
    work = Work(source=source, parsed=ParsedDocument("t", 0, "x", "utf-8"))
    with pytest.raises(DocumentError) as caught:
        StoreStage(store).run(work)
    assert not caught.value.retryable
