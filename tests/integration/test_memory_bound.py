"""A worker's peak memory stays within 300 MB for any TXT or PDF under parse.max_bytes.

Measured as the worker reports it to the ledger (`peak_rss`, its ru_maxrss), through the
real `lexi-maint run` with the embedded FalkorDB: the hostile case is a 199 MiB text file
of one line (just under the default max_bytes of 200 MiB; the pipeline read it whole
before and its worker peaked at 1.1 GiB), and a 6,000-page PDF that is read page by page.
Slow: the 199 MiB file takes minutes (`make bench-memory` measures one of CAO sentences).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.bigtext import MIB, make_one_line_txt
from tests.integration.lexi_env import Workspace, workspace
from tests.llm_server import API_KEY, FakeLlmServer
from tests.pdfgen import cao_page_text, make_many_pages_pdf

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

WORKER_BUDGET = 300 * 10**6  # bytes


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as made:
        made.write_config(workers=1)
        yield made


def only_document(ws: Workspace) -> dict[str, object]:
    run = ws.cli("run", "cao_import", "--progress", "lines", timeout=3600)
    assert run.returncode == 0, run.stdout + run.stderr
    [document] = json.loads(ws.cli("status", "cao_import", "--json").stdout)["documents"]
    assert document["status"] == "done", document
    return dict(document)


def test_a_199_mib_one_line_txt_keeps_its_worker_within_300_mb(ws: Workspace) -> None:
    # one word without a boundary: chunked by hard cuts, and the cheapest text to analyse
    # (the CAO-like sentences of `make bench-memory` take minutes more, to the same peak)
    make_one_line_txt(ws.input / "one-line.txt", 199 * MIB, unit="x")
    document = only_document(ws)
    peak = document["peak_rss"]
    assert isinstance(peak, int) and isinstance(document["chunks"], int)
    print(f"199 MiB one-line TXT: worker peak {peak / 10**6:.1f} MB, {document['chunks']} chunks")
    assert peak <= WORKER_BUDGET
    assert document["chunks"] > 50_000  # 208,666,624 characters at most 4,000 per chunk
    [row] = ws.graph_query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) RETURN count(c) AS chunks, max(c.end) AS end"
    )
    assert row == {"chunks": document["chunks"], "end": 199 * MIB}  # the text tiled, all stored


def test_a_pdf_over_the_streaming_size_keeps_its_worker_within_300_mb(ws: Workspace) -> None:
    pdf = make_many_pages_pdf(ws.input / "lang.pdf", pages=6000)
    assert pdf.stat().st_size > 4 * MIB  # read page by page, written in parts
    document = only_document(ws)
    peak = document["peak_rss"]
    assert isinstance(peak, int)
    print(f"6,000-page PDF: worker peak {peak / 10**6:.1f} MB, {document['chunks']} chunks")
    assert peak <= WORKER_BUDGET
    [row] = ws.graph_query("MATCH (d:Document) RETURN d.pages AS pages")
    assert row == {"pages": 6000}


def test_a_long_document_on_the_llm_path_keeps_its_worker_within_300_mb(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    pages = "\n\n".join(cao_page_text(n) for n in range(1, 201)) + "\n\n"
    text = (pages * (5 * MIB // len(pages) + 1))[: 5 * MIB]  # over 4 MiB: streamed
    (ws.input / "lang.txt").write_text(text, encoding="utf-8")
    key = ws.root / "deepseek.key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    with FakeLlmServer() as server:
        ws.write_config(workers=1, extra=(
            f'\n[llm]\nprovider = "deepseek"\nbase_url = "{server.url}"\n'
            f'api_key_file = "{key}"\n'))  # fmt: skip
        document = only_document(ws)
    peak = document["peak_rss"]
    assert isinstance(peak, int)
    print(f"5 MiB text, LLM stages: worker peak {peak / 10**6:.1f} MB, {document['chunks']} chunks")
    assert peak <= WORKER_BUDGET
    [row] = ws.graph_query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) RETURN count(c) AS chunks, max(c.end) AS end"
    )
    assert row == {"chunks": document["chunks"], "end": len(text)}
