"""The parse stage on real files made in tmp_path (text, PDFs from tests/pdfgen.py)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject, PdfReader, PdfWriter

from lexi_maint.config.pipeline import ParseSettings
from lexi_maint.errors import DocumentError, ErrorClass
from lexi_maint.pipeline import pdf, plaintext, sourcefile
from lexi_maint.pipeline.contract import SourceFile, Work
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.pipeline.plaintext import PAGE_SEPARATOR
from tests.pdfgen import (
    make_encrypted_pdf,
    make_image_only_pdf,
    make_many_pages_pdf,
    make_text_pdf,
    make_truncated_pdf,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
NOBODY = 65534


def make_work(path: Path, root: Path) -> Work:
    return Work(source=SourceFile(path=path, input_root=root.resolve(), sha256="0" * 64, size=0))


def run_parse(path: Path, root: Path, settings: ParseSettings | None = None) -> Work:
    return ParseStage(settings or ParseSettings()).run(make_work(path, root))


def parse_error(path: Path, root: Path, settings: ParseSettings | None = None) -> DocumentError:
    with pytest.raises(DocumentError) as info:
        run_parse(path, root, settings)
    return info.value


@pytest.fixture
def root(tmp_path: Path) -> Path:
    directory = tmp_path / "input"
    directory.mkdir()
    return directory


def write(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.write_bytes(data)
    return path


# --- text files -----------------------------------------------------------------------------


def test_utf8_text_is_read_with_title_and_no_warning(root: Path) -> None:
    text = "\n  Cao Schoonmaak 2025  \nArtikel 5 Loon\n1. Het loon is € 2.450,00; geïnformeerd.\n"
    work = run_parse(write(root, "cao.txt", text.encode("utf-8")), root)
    parsed = work.require_parsed()
    assert parsed.text == text
    assert parsed.title == "Cao Schoonmaak 2025"
    assert (parsed.pages, parsed.encoding) == (0, "utf-8")
    assert work.warnings == ()


def test_utf8_bom_is_dropped(root: Path) -> None:
    work = run_parse(write(root, "bom.txt", b"\xef\xbb\xbfTitel\nArtikel 1\n"), root)
    assert work.require_parsed().text == "Titel\nArtikel 1\n"
    assert work.require_parsed().title == "Titel"


def test_crlf_and_cr_become_lf(root: Path) -> None:
    work = run_parse(write(root, "crlf.TXT", b"Artikel 1\r\nLid 1\rLid 2\r\n"), root)
    assert work.require_parsed().text == "Artikel 1\nLid 1\nLid 2\n"


def test_utf16_with_bom_is_decoded(root: Path) -> None:
    work = run_parse(write(root, "u16.txt", "Artikel 1 € 10,00\n".encode("utf-16")), root)
    assert work.require_parsed().text == "Artikel 1 € 10,00\n"
    assert work.require_parsed().encoding == "utf-16"


def test_cp1252_fallback_decodes_and_warns_with_byte_offset(root: Path) -> None:
    original = "Loon € 2.450,00, geïnformeerd\n"
    work = run_parse(write(root, "oud.txt", original.encode("cp1252")), root)
    assert work.require_parsed().text == original
    assert work.require_parsed().encoding == "cp1252"
    assert work.warnings == ("not valid UTF-8 (byte 5); decoded as cp1252",)


def test_configured_latin1_fallback(root: Path) -> None:
    settings = ParseSettings(fallback_encoding="latin-1")
    work = run_parse(write(root, "l1.txt", "Cliënt\n".encode("latin-1")), root, settings)
    assert work.require_parsed().text == "Cliënt\n"
    assert work.warnings == ("not valid UTF-8 (byte 3); decoded as latin-1",)


def test_bytes_undefined_in_cp1252_are_replaced_and_counted(root: Path) -> None:
    work = run_parse(write(root, "x.txt", b"Artikel \x81 1\n"), root)
    assert work.require_parsed().text == "Artikel \ufffd 1\n"
    assert work.warnings == (
        "not valid UTF-8 (byte 8); decoded as cp1252 (1 bytes undefined in cp1252 "
        "replaced by U+FFFD)",
    )


def test_binary_junk_named_txt_is_binary(root: Path) -> None:
    error = parse_error(write(root, "junk.txt", bytes(range(256)) * 8), root)
    assert error.error_class is ErrorClass.BINARY
    assert "NUL" in error.message


def test_many_control_characters_without_nul_are_binary(root: Path) -> None:
    error = parse_error(write(root, "ctl.txt", b"abc\x01\x02\x03\x1b" * 200), root)
    assert error.error_class is ErrorClass.BINARY
    assert error.message.startswith("binary content: 57% control characters")


def test_a_few_control_characters_are_tolerated(root: Path) -> None:
    data = b"Artikel 1\x0b\n" + b"tekst " * 100 + b"\f\t\n"
    assert run_parse(write(root, "ok.txt", data), root).require_parsed().title == "Artikel 1"


def test_zero_bytes_is_empty(root: Path) -> None:
    error = parse_error(write(root, "leeg.txt", b""), root)
    assert error.error_class is ErrorClass.EMPTY
    assert error.message == "file is empty (0 bytes)"


def test_whitespace_only_is_empty(root: Path) -> None:
    error = parse_error(write(root, "spaties.txt", b" \r\n\t\n"), root)
    assert error.error_class is ErrorClass.EMPTY


def test_file_over_the_size_limit_is_unsupported(root: Path) -> None:
    error = parse_error(write(root, "groot.txt", b"x" * 2048), root, ParseSettings(max_bytes=1024))
    assert error.error_class is ErrorClass.UNSUPPORTED
    assert "parse.max_bytes" in error.message


def test_unsupported_suffix(root: Path) -> None:
    error = parse_error(write(root, "cao.docx", b"PK\x03\x04"), root)
    assert error.error_class is ErrorClass.UNSUPPORTED
    assert error.message == "unsupported file type ('.docx'): lexi-maint reads .txt and .pdf"


def test_bad_fallback_encoding_is_rejected_with_advice() -> None:
    with pytest.raises(ValueError, match="not a known codec"):
        ParseSettings(fallback_encoding="klingon")


# --- where the file is and what it is -----------------------------------------------------


def test_symlink_escaping_the_input_directory(root: Path, tmp_path: Path) -> None:
    secret = write(tmp_path, "secret.txt", b"geheim\n")
    (root / "link.txt").symlink_to(secret)
    error = parse_error(root / "link.txt", root)
    assert error.error_class is ErrorClass.OUTSIDE_INPUT
    assert error.message == f"symlink points outside the input directory: {secret.resolve()}"


def test_symlink_inside_the_input_directory_is_followed(root: Path) -> None:
    (root / "sub").mkdir()
    write(root / "sub", "echt.txt", b"Artikel 1\n")
    (root / "alias.txt").symlink_to(Path("sub") / "echt.txt")
    assert run_parse(root / "alias.txt", root).require_parsed().text == "Artikel 1\n"


def test_broken_symlink_is_unreadable(root: Path) -> None:
    (root / "weg.txt").symlink_to(root / "bestaat-niet.txt")
    error = parse_error(root / "weg.txt", root)
    assert error.error_class is ErrorClass.UNREADABLE
    assert "broken symlink" in error.message


def test_symlink_loop_is_unreadable(root: Path) -> None:
    (root / "a.txt").symlink_to(root / "b.txt")
    (root / "b.txt").symlink_to(root / "a.txt")
    assert parse_error(root / "a.txt", root).error_class is ErrorClass.UNREADABLE


def test_directory_named_txt_is_not_a_file(root: Path) -> None:
    (root / "map.txt").mkdir()
    error = parse_error(root / "map.txt", root)
    assert error.error_class is ErrorClass.NOT_A_FILE
    assert error.message == "not a regular file (a directory)"


def test_named_pipe_is_not_a_file_and_does_not_block(root: Path) -> None:
    os.mkfifo(root / "pijp.txt")
    error = parse_error(root / "pijp.txt", root)
    assert error.error_class is ErrorClass.NOT_A_FILE
    assert error.message == "not a regular file (a named pipe)"


def _parse_in_child(path: Path, root: Path, conn: Connection, drop_to: int | None) -> None:
    if drop_to is not None:
        os.setgid(drop_to)
        os.setuid(drop_to)
    try:
        run_parse(path, root)
        conn.send(("parsed", ""))
    except DocumentError as error:
        conn.send((error.error_class.value, error.message))


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can enter (tmp_path's parents are private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="lexi-parse-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_unreadable_file_reports_the_os_reason(shared_dir: Path) -> None:
    """chmod 000 does not stop root: as root the parse runs in a child that became nobody."""
    path = write(shared_dir, "dicht.txt", b"Artikel 1\n")
    path.chmod(0)
    drop_to = NOBODY if os.geteuid() == 0 else None
    receiver, sender = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=_parse_in_child, args=(path, shared_dir, sender, drop_to)
    )
    child.start()
    child.join(timeout=20)
    assert child.exitcode == 0
    assert receiver.poll(1)
    error_class, message = receiver.recv()
    assert error_class == ErrorClass.UNREADABLE.value
    assert message == f"cannot open {path}: Permission denied"


# --- PDF ----------------------------------------------------------------------------------

PAGES = [
    "Artikel 1 Definities\nIn deze cao wordt verstaan onder:\na. werkgever: de onderneming;",
    "Artikel 5 Loon\n1. Het loon bedraagt EUR 2.450,00 per 1 januari 2025.",
    "Artikel 6 Slot\nGeïnformeerd: FNV, CNV Vakmensen en De Unie.",
]


def test_text_pdf_gives_page_texts_joined_by_the_separator(root: Path) -> None:
    work = run_parse(make_text_pdf(root / "cao.pdf", PAGES), root)
    parsed = work.require_parsed()
    assert parsed.pages == 3
    assert parsed.text.split(PAGE_SEPARATOR) == PAGES
    assert (parsed.title, parsed.encoding) == ("Artikel 1 Definities", "pdf")
    assert work.warnings == ()


def test_pdf_metadata_title_wins_over_first_line(root: Path) -> None:
    path = make_text_pdf(root / "t.PDF", PAGES[:1], title="  Cao Testsector\n 2025 ")
    assert run_parse(path, root).require_parsed().title == "Cao Testsector 2025"


def test_encrypted_pdf(root: Path) -> None:
    error = parse_error(make_encrypted_pdf(root / "geheim.pdf", "Artikel 1 Loon"), root)
    assert error.error_class is ErrorClass.PDF_ENCRYPTED
    assert "password" in error.message


def test_pdf_with_only_an_owner_password_opens(root: Path) -> None:
    path = make_encrypted_pdf(root / "beveiligd.pdf", "Artikel 1 Loon", user_password="")
    assert run_parse(path, root).require_parsed().text == "Artikel 1 Loon"


def test_truncated_pdf_is_corrupt_without_pypdf_log_noise(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error = parse_error(make_truncated_pdf(root / "half.pdf"), root)
    assert error.error_class is ErrorClass.PDF_CORRUPT
    assert error.message.startswith("cannot read PDF: ")
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").propagate is True


def _streamed_text(path: Path) -> str:
    with path.open("rb") as handle:
        return "".join(pdf.StreamedPdf(handle, 0.0).pieces())


def _whole_text(path: Path) -> str:
    with path.open("rb") as handle:
        return pdf.parse_pdf(handle)[0].text


@pytest.mark.parametrize("read", [_whole_text, _streamed_text], ids=["whole", "streamed"])
@pytest.mark.parametrize("bug", [NameError, ModuleNotFoundError])
def test_a_missing_module_or_a_wrong_name_is_not_read_as_a_corrupt_pdf(
    root: Path, monkeypatch: pytest.MonkeyPatch, bug: type[Exception], read: Any
) -> None:
    """Such an error comes from code, never from the file: it must reach the worker (which
    logs the traceback), not fail every PDF as pdf_corrupt. Damage pypdf reports as an
    AttributeError still is pdf_corrupt."""
    path = make_text_pdf(root / "cao.pdf", PAGES)

    def broken(*_args: object, **_kwargs: object) -> str:
        raise bug("name 'decode_stream' is not defined")

    monkeypatch.setattr(PageObject, "extract_text", broken)
    with pytest.raises(bug):
        read(path)

    def damaged(*_args: object, **_kwargs: object) -> str:
        raise AttributeError("'NullObject' object has no attribute 'get_object'")

    monkeypatch.setattr(PageObject, "extract_text", damaged)
    with pytest.raises(DocumentError) as caught:
        read(path)
    assert caught.value.error_class is ErrorClass.PDF_CORRUPT


def test_a_missing_module_reading_the_metadata_is_not_an_empty_title(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_text_pdf(root / "cao.pdf", PAGES[:1], title="Cao Testsector")

    def metadata(_reader: PdfReader) -> None:
        raise ModuleNotFoundError("No module named 'pypdf._codecs'")

    monkeypatch.setattr(PdfReader, "metadata", property(metadata))
    with pytest.raises(ModuleNotFoundError):
        _whole_text(path)


def test_text_file_named_pdf_is_corrupt(root: Path) -> None:
    error = parse_error(write(root, "nep.pdf", b"Artikel 1 Loon\n" * 20), root)
    assert error.error_class is ErrorClass.PDF_CORRUPT


def test_pdf_without_pages_is_corrupt(root: Path) -> None:
    PdfWriter().write(root / "leeg.pdf")
    error = parse_error(root / "leeg.pdf", root)
    assert (error.error_class, error.message) == (ErrorClass.PDF_CORRUPT, "PDF has no pages")


def test_image_only_pdf_has_no_text(root: Path) -> None:
    error = parse_error(make_image_only_pdf(root / "scan.pdf", pages=2), root)
    assert error.error_class is ErrorClass.PDF_NO_TEXT
    assert error.message == (
        "no text layer on any of 2 pages; scanned PDFs need OCR, which lexi-maint does not do"
    )


def test_recoverable_pdf_damage_becomes_one_warning(root: Path) -> None:
    path = make_text_pdf(root / "xref.pdf", PAGES[:2])
    data = path.read_bytes()
    match = re.search(rb"startxref\s+(\d+)", data)
    assert match is not None
    wrong = str(int(match.group(1)) + 7).encode()
    path.write_bytes(data[: match.start(1)] + wrong + data[match.end(1) :])
    work = run_parse(path, root)
    assert work.require_parsed().text.split(PAGE_SEPARATOR) == PAGES[:2]
    assert len(work.warnings) == 1
    assert work.warnings[0].startswith("pypdf reported 2 problem(s) while reading the PDF; first: ")


def test_object_cache_stays_bounded_while_pages_are_read(root: Path) -> None:
    path = make_many_pages_pdf(root / "lang.pdf", pages=60)
    with path.open("rb") as handle, PdfReader(handle) as reader:
        texts = pdf._extract_pages(reader, 0.0)
        cached = len(reader.resolved_objects)
    assert len(texts) == 60
    assert "Artikel 60 Loon" in texts[59]
    # Untrimmed, pypdf would hold the page, its content stream and more: > 3 per page.
    assert cached <= 60 + 10


# --- pure helpers -------------------------------------------------------------------------


def test_trimmer_drops_page_objects_and_keeps_shared_ones() -> None:
    class FakeReader:
        def __init__(self) -> None:
            self.resolved_objects: dict[Any, Any] = {("root", 0): object()}

    reader = FakeReader()
    trimmer = pdf._ObjectCacheTrimmer()
    for page in range(3):
        with trimmer.trimming(reader):
            reader.resolved_objects[("content", page)] = object()
            reader.resolved_objects.setdefault(("font", 0), object())
    assert set(reader.resolved_objects) == {("root", 0), ("font", 0)}


def test_first_line_skips_blank_lines_and_is_capped() -> None:
    assert plaintext.first_line("\n \n\t Artikel 1  \nrest") == "Artikel 1"
    assert plaintext.first_line("x" * 300) == "x" * plaintext.TITLE_MAX_CHARS
    assert plaintext.first_line(" \n\n") == ""


def test_join_pages_normalises_and_trims_page_ends() -> None:
    assert pdf.join_pages(["a\r\nb \n", "", "c"]) == "a\nb\n\f\n\n\f\nc"


def problem_class(mode: int, size: int, max_bytes: int = 100) -> ErrorClass | None:
    problem = sourcefile.file_problem(mode, size, max_bytes)
    return None if problem is None else problem.error_class


def test_file_problem_by_mode_and_size() -> None:
    regular = stat.S_IFREG | 0o644
    assert problem_class(regular, 10) is None
    assert problem_class(stat.S_IFCHR | 0o644, 0) is ErrorClass.NOT_A_FILE
    assert problem_class(stat.S_IFSOCK, 1) is ErrorClass.NOT_A_FILE
    assert problem_class(regular, 0) is ErrorClass.EMPTY
    assert problem_class(regular, 101) is ErrorClass.UNSUPPORTED


def test_outside_input_problem_names_the_case() -> None:
    root = Path("/in")
    assert sourcefile.outside_input_problem(Path("/in/a.txt"), Path("/in/b/a.txt"), root) is None
    link = sourcefile.outside_input_problem(Path("/in/a.txt"), Path("/etc/passwd"), root)
    assert link is not None and link.message.startswith("symlink points outside")
    direct = sourcefile.outside_input_problem(Path("/elders/a.txt"), Path("/elders/a.txt"), root)
    assert direct is not None and direct.error_class is ErrorClass.OUTSIDE_INPUT
    assert direct.message == "file is outside the input directory /in: /elders/a.txt"


# --- the samples --------------------------------------------------------------------------


def sample_paths() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.suffix in (".txt", ".pdf"))


def test_there_are_text_and_pdf_samples() -> None:
    suffixes = [p.suffix for p in sample_paths()]
    assert suffixes.count(".txt") >= 2 and suffixes.count(".pdf") >= 2


@pytest.mark.parametrize("path", sample_paths(), ids=lambda p: p.name)
def test_sample_parses_cleanly(path: Path) -> None:
    work = run_parse(path, SAMPLES)
    parsed = work.require_parsed()
    assert work.warnings == ()
    assert re.search(r"^Artikel \d+ ", parsed.text, re.MULTILINE)
    if path.suffix == ".pdf":
        source = (SAMPLES / "src" / f"{path.stem}.txt").read_text(encoding="utf-8")
        assert parsed.title == source.splitlines()[0]
        assert parsed.pages == source.count("=== pagina ===") + 1
    else:
        assert parsed.encoding == "utf-8" and "€" in parsed.text


# The limit's signal may land inside a gc callback (hypothesis registers one), where Python
# can only report the exception as unraisable; the timer fires again 0.1 s later and that
# one ends the page (`cpu_limit`), which is what the assertions check.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_page_that_burns_cpu_fails_the_document_in_seconds(root: Path) -> None:
    from tests.pdfgen import make_shared_stream_pdf

    path = make_shared_stream_pdf(root / "burn.pdf", pages=200, stream_bytes=4 * 2**20)
    assert path.stat().st_size < 400_000  # the was 375 KB
    stage = ParseStage(ParseSettings(page_seconds=1.0))
    source = SourceFile(path, root, "0" * 64, path.stat().st_size)
    with pytest.raises(DocumentError) as caught:
        stage.run(Work(source=source))
    assert caught.value.error_class is ErrorClass.PDF_CORRUPT
    assert "page 1 of 200 took more than 1 s of CPU (parse.page_seconds)" in caught.value.message


@pytest.mark.parametrize(
    ("stream_bytes", "limit"),
    [(70 * 2**20, "Limit reached while decompressing"), (6 * 2**20, "maximum number of tokens")],
    ids=["decompressed bytes", "operands and operators"],
)
def test_a_page_holding_more_than_the_page_bound_fails_without_filling_memory(
    root: Path, stream_bytes: int, limit: str
) -> None:
    """Issue 10's bound: a 70 MB page (a 240 KB file) grew a worker past 380 MB within its
    10 s of CPU; now the page bound stops it before pypdf holds it. No CPU limit here, so
    only the content bound can end the page."""
    from tests.pdfgen import make_shared_stream_pdf

    path = make_shared_stream_pdf(root / "heavy.pdf", pages=1, stream_bytes=stream_bytes)
    stage = ParseStage(ParseSettings(page_seconds=0.0))
    source = SourceFile(path, root, "0" * 64, path.stat().st_size)
    with pytest.raises(DocumentError) as caught:
        stage.run(Work(source=source))
    assert caught.value.error_class is ErrorClass.PDF_CORRUPT
    assert "page 1 of 1 holds more content than lexi-maint reads from one page" in (
        caught.value.message
    )
    assert limit in caught.value.message, caught.value.message
