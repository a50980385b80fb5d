"""Ledger against graph: what the run-start check and `verify` find (pure)."""

from __future__ import annotations

from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import Status
from lexi_maint.run.reconcile import GraphEntry, missing_from_graph, verify


def record(path: str, sha: str, status: Status = Status.DONE, chunks: int = 2) -> DocumentRecord:
    return DocumentRecord("j", path, sha, 10, status, 1, None, None, (), {}, None, chunks, None,
                          None, None)  # fmt: skip


RECORDS = [
    record("/in/a.txt", "aa"),
    record("/in/b.txt", "bb"),
    record("/in/c.txt", "cc"),
    record("/in/d.txt", "dd", Status.FAILED),
]


def test_done_documents_absent_or_different_in_the_graph_are_missing() -> None:
    graph = {"/in/a.txt": GraphEntry("aa"), "/in/b.txt": GraphEntry("old"),
             "/in/d.txt": GraphEntry("dd")}  # fmt: skip
    assert missing_from_graph(RECORDS, graph) == ["/in/b.txt", "/in/c.txt"]


def test_an_agreeing_graph_has_nothing_missing() -> None:
    graph = {r.path: GraphEntry(r.sha256) for r in RECORDS}
    assert missing_from_graph(RECORDS, graph) == []


def test_verify_reports_every_difference_and_what_to_do() -> None:
    graph = {
        "/in/a.txt": GraphEntry("aa", 2),
        "/in/b.txt": GraphEntry("aa", 2),
        "/in/c.txt": GraphEntry("cc", 1),
        "/in/d.txt": GraphEntry("dd", 3),
    }
    result = verify("j", RECORDS, graph)
    assert not result.consistent
    assert result.stale == ("/in/b.txt",)
    assert result.chunk_mismatch == (("/in/c.txt", 2, 1),)
    assert result.not_done == (("/in/d.txt", "failed"),)
    text = result.render()
    assert "other content in the graph (sha256 differs): /in/b.txt (ledger bb, graph aa)" in text
    assert "chunks: ledger 2, graph 1: /in/c.txt" in text
    assert "`lexi-maint run j` processes the differing ones again" in text
    wiped = verify("j", RECORDS, {})
    assert wiped.missing == ("/in/a.txt", "/in/b.txt", "/in/c.txt") and wiped.checked == 3


def test_verify_of_an_agreeing_graph_says_so() -> None:
    graph = {r.path: GraphEntry(r.sha256, 2) for r in RECORDS[:3]}
    result = verify("j", RECORDS[:3], graph)
    assert result.consistent and "ledger and graph agree" in result.render()
