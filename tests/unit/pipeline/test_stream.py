"""A long document a window at a time gives what one pass over the whole text gives.

Each streamed piece is compared with the whole-text function it stands in for: the text
file read in blocks with `parse_text`, the PDF read page by page with `parse_pdf`, windowed
chunking with `split_text`, the graph rows built per part with `build_graph_document`, and
the worker's streamed path with its whole path, end to end on the in-memory graph store.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import replace
from pathlib import Path

import pytest

from lexi_maint.config.pipeline import ChunkSettings, ParseSettings
from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.graph import FakeGraphStore
from lexi_maint.graph.model import GraphPart
from lexi_maint.pipeline import plaintext, stream
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage, split_text, split_windows
from lexi_maint.pipeline.contract import Failure, Outcome, ParsedDocument, SourceFile, Success, Work
from lexi_maint.pipeline.graphdoc import PartBuilder, build_graph_document
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.pdf import StreamedPdf, parse_pdf
from lexi_maint.pipeline.plaintext import StreamedTxt, parse_text
from lexi_maint.pipeline.store import StoreStage
from lexi_maint.pipeline.worker import process_document
from tests.pdfgen import cao_page_text, make_many_pages_pdf

CAO_TEXT = "\n\n".join(cao_page_text(n) for n in range(1, 121))  # 12 chapters, 120 articles


def streamed_txt(
    data: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, StreamedTxt]:
    monkeypatch.setattr(plaintext, "STREAM_BLOCK", block)
    streamed = StreamedTxt(io.BytesIO(data), ParseSettings())
    return "".join(streamed.pieces()), streamed


@pytest.mark.parametrize(
    "data",
    [
        "Artikel 1 Loon\r\nHet loon is € 2.450,00.\r\n\r\nArtikel 2\rEinde\r".encode(),
        codecs.BOM_UTF8 + "  \n\n  Titel met é\nen meer\n".encode(),
        "Titel\r\nUTF-16 tekst ✅\r\n".encode("utf-16"),
        "Titel in cp1252: café\r\n".encode("cp1252") + b"\x81 undefined\n",
        codecs.BOM_UTF8 + b"ok\n" + "\u20ac".encode("cp1252") + b" 12\n",
    ],
    ids=["crlf-utf8", "bom-utf8", "utf16", "cp1252-fallback", "bom-then-invalid"],
)
@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_a_text_file_read_in_blocks_is_the_text_read_whole(
    data: bytes, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, warnings = parse_text(data, ParseSettings())
    text, streamed = streamed_txt(data, block, monkeypatch)
    assert text == whole.text
    assert (streamed.encoding, streamed.warnings) == (whole.encoding, warnings)
    assert streamed.title == whole.title


@pytest.mark.parametrize(
    ("data", "error_class"),
    [
        (b"tekst\x00met NUL" + b"x" * 100, ErrorClass.BINARY),
        (b"\x01\x02\x03\x04" * 100, ErrorClass.BINARY),
        (b" \n\t\r\n  \n", ErrorClass.EMPTY),
        (codecs.BOM_UTF16_LE + b"\x00\xd8", ErrorClass.BINARY),  # a lone surrogate
    ],
    ids=["nul", "control", "whitespace", "bad-utf16"],
)
def test_a_text_file_read_in_blocks_fails_as_the_text_read_whole(
    data: bytes, error_class: ErrorClass, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DocumentError) as whole:
        parse_text(data, ParseSettings())
    with pytest.raises(DocumentError) as streamed:
        streamed_txt(data, 3, monkeypatch)
    assert streamed.value.error_class is whole.value.error_class is error_class
    assert streamed.value.message == whole.value.message


def test_a_pdf_read_page_by_page_is_the_pdf_read_whole(tmp_path: Path) -> None:
    pdf = make_many_pages_pdf(tmp_path / "lang.pdf", pages=30)
    with pdf.open("rb") as handle:
        whole, warnings = parse_pdf(handle)
    with pdf.open("rb") as handle:
        streamed = StreamedPdf(handle, 0.0)
        text = "".join(streamed.pieces())
    assert text == whole.text
    assert (streamed.title, streamed.pages, streamed.warnings) == (whole.title, 30, warnings)


def test_windowed_chunking_of_a_text_that_fits_one_window_is_split_text() -> None:
    settings = ChunkSettings()
    pieces = [CAO_TEXT[i : i + 1000] for i in range(0, len(CAO_TEXT), 1000)]
    windows = list(split_windows(pieces, settings, size=len(CAO_TEXT)))
    assert len(windows) == 1
    assert [span for span, _ in windows[0]] == split_text(CAO_TEXT, settings)


def test_windowed_chunking_tiles_the_text_and_keeps_headings_across_windows() -> None:
    settings = ChunkSettings()
    pieces = [CAO_TEXT[i : i + 5000] for i in range(0, len(CAO_TEXT), 5000)]
    windows = list(split_windows(pieces, settings, size=20_000))
    assert len(windows) > 3
    located = [item for window in windows for item in window]
    assert "".join(text for _, text in located) == CAO_TEXT
    ends = [0, *(span.end for span, _ in located)]
    assert [span.start for span, _ in located] == ends[:-1]
    assert all(len(text) <= settings.max_chars for _, text in located)
    whole = {(s.start, s.end): s.heading for s in split_text(CAO_TEXT, settings)}
    same = [whole[(s.start, s.end)] == s.heading for s, _ in located if (s.start, s.end) in whole]
    assert all(same) and len(same) >= 0.9 * len(whole)  # the chapter prefix carried over
    assert located[-1][0].heading == "Hoofdstuk 12 Arbeidsvoorwaarden > Artikel 120 Loon en " \
        "toeslagen (pagina 120)"  # fmt: skip


def test_a_window_without_any_boundary_is_cut_hard() -> None:
    windows = list(split_windows(["x" * 45_000], ChunkSettings(), size=10_000))
    assert [len(w) for w in windows][:4] == [3, 3, 3, 3]  # 10,000 characters = 3 chunks
    assert sum(len(text) for w in windows for _, text in w) == 45_000


def test_parts_hold_the_rows_of_the_whole_document(tmp_path: Path) -> None:
    source = SourceFile(tmp_path / "cao.txt", tmp_path, "0" * 64, len(CAO_TEXT))
    work = Work(source, ParsedDocument("t", 0, CAO_TEXT, "utf-8"))
    work = AnalyzeStage().run(ChunkStage(ChunkSettings()).run(work))
    whole = build_graph_document(work)
    builder = PartBuilder()
    step = 7
    parts = [
        builder.part(work.chunks[i : i + step], work.analyses[i : i + step])
        for i in range(0, len(work.chunks), step)
    ]
    parts.append(builder.references())
    assert len(parts) > 3
    joined = GraphPart(*(tuple(r for p in parts for r in getattr(p, name)) for name in
                         ("chunks", "next_pairs", "mentions", "references")))  # fmt: skip
    assert joined.chunks == whole.chunks
    assert joined.next_pairs == whole.next_pairs
    assert joined.mentions == whole.mentions
    assert joined.references == whole.references and whole.references
    assert builder.unresolved_references == whole.unresolved_references
    assert builder.chunks == len(whole.chunks)


def run_worker(
    path: Path, stream_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[Outcome, FakeGraphStore]:
    monkeypatch.setattr(stream, "STREAM_BYTES", stream_bytes)
    monkeypatch.setattr("lexi_maint.pipeline.worker.STREAM_BYTES", stream_bytes)
    store = FakeGraphStore()
    stages = (ParseStage(ParseSettings()), ChunkStage(ChunkSettings()), AnalyzeStage(),
              StoreStage(store))  # fmt: skip
    source = SourceFile(path, path.parent, "0" * 64, path.stat().st_size)
    return process_document(source, stages), store


@pytest.mark.parametrize("name", ["cao.txt", "cao.pdf"])
def test_the_worker_streams_a_long_document_to_the_same_graph(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / name
    if name.endswith(".pdf"):
        make_many_pages_pdf(path, pages=40)
    else:
        path.write_text(CAO_TEXT, encoding="utf-8")
    whole, whole_store = run_worker(path, 1 << 30, monkeypatch)
    streamed, streamed_store = run_worker(path, 0, monkeypatch)
    assert isinstance(whole, Success) and isinstance(streamed, Success)
    assert (whole_store.parts_written, streamed_store.parts_written) == (0, 2)  # rows, refs
    assert streamed.chunks == whole.chunks
    assert streamed.warnings == whole.warnings
    assert set(streamed.timings) == {"parse", "chunk", "analyze", "store"}
    expected, got = whole_store.documents[str(path)], streamed_store.documents[str(path)]
    assert got.document == expected.document
    assert (got.chunks, got.next_pairs, got.mentions, got.references) == (
        expected.chunks, expected.next_pairs, expected.mentions, expected.references)  # fmt: skip


def test_a_streamed_document_fails_as_a_whole_one_and_names_its_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"tekst " * 1000 + b"\x00")
    outcome, store = run_worker(path, 0, monkeypatch)
    assert isinstance(outcome, Failure)
    assert outcome.error_class == ErrorClass.BINARY
    assert "parse" in outcome.timings and not store.documents


def test_a_document_of_many_chunks_is_stored_in_parts_with_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lexi_maint.pipeline.store.PART_CHUNKS", 10)  # LLM stages use it too
    source = SourceFile(tmp_path / "cao.txt", tmp_path, "0" * 64, len(CAO_TEXT))
    work = Work(source, ParsedDocument("Titel", 0, CAO_TEXT + "zie artikel 999", "utf-8"))
    work = AnalyzeStage().run(ChunkStage(ChunkSettings()).run(work))
    assert len(work.chunks) > 30
    store = FakeGraphStore()
    stored = StoreStage(store).run(work)
    whole_store = FakeGraphStore()
    whole = StoreStage(whole_store).run(
        replace(work, chunks=work.chunks[:10], analyses=work.analyses[:10])
    )  # ten chunks: one payload
    assert store.parts_written == -(-len(work.chunks) // 10) + 1  # and the references
    assert whole_store.parts_written == 0
    expected = build_graph_document(work)
    got = store.documents[str(source.path)]
    assert got.document == expected.document
    assert (got.chunks, got.next_pairs, got.mentions, got.references) == (
        expected.chunks, expected.next_pairs, expected.mentions, expected.references)  # fmt: skip
    assert stored.stored and stored.warnings == (
        "1 reference(s) to articles without a matching heading in this document were not linked",
    )
    assert whole.stored
