"""Tests of the chunk stage: structure-aware splitting, merging, headings and invariants."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from pathlib import Path

import pytest

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.pipeline.articles import Kind, find_headings, parse_heading
from lexi_maint.pipeline.chunk import (
    ChunkStage,
    Span,
    split_text,
)
from lexi_maint.pipeline.contract import ParsedDocument, SourceFile, Work

CAO = """Collectieve arbeidsovereenkomst voor de Metaal 2025-2026

Hoofdstuk 1 Algemeen

Artikel 1 Definities
In deze cao wordt verstaan onder:
a. werkgever: de onderneming die lid is van Koninklijke Metaalunie;
b. werknemer: degene die in dienst is van de werkgever.

Artikel 2 Werkingssfeer
1. Deze cao is van toepassing op alle werknemers van de werkgever.
2. Voor oproepkrachten geldt artikel 5 lid 2.
\f
Hoofdstuk 2 Loon

Artikel 5 Loon
1. Het loon bedraagt per 1 januari 2025 € 2.450,00 per maand.
2. Per 1 juli 2025 stijgt het loon met 3,5%.
"""


def texts(text: str, spans: list[Span]) -> list[str]:
    return [text[span.start : span.end] for span in spans]


def assert_tiles(text: str, spans: list[Span], settings: ChunkSettings) -> None:
    """The invariants every split must keep."""
    assert "".join(texts(text, spans)) == text
    if not text:
        assert spans == []
        return
    assert spans[0].start == 0
    assert spans[-1].end == len(text)
    for before, after in itertools.pairwise(spans):
        assert before.end == after.start
    for span in spans:
        assert 0 < span.end - span.start <= settings.max_chars


def heading_only(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] holds only (parts of) heading lines of `text` and blank space."""
    covered = [False] * len(text)
    for heading in find_headings(text):
        covered[heading.start : heading.end] = [True] * (heading.end - heading.start)
    return all(covered[i] or text[i].isspace() for i in range(start, end))


# --- settings ---------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    assert ChunkSettings() == ChunkSettings(min_chars=200, max_chars=4000)


@pytest.mark.parametrize(
    ("min_chars", "max_chars", "message"),
    [
        (0, 100, "min_chars must be greater than 0"),
        (-5, 100, "min_chars must be greater than 0"),
        (100, 100, "smaller than max_chars"),
        (300, 100, "smaller than max_chars"),
        (10, 0, "max_chars must be a positive number"),
    ],
)
def test_settings_reject_impossible_limits(min_chars: int, max_chars: int, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ChunkSettings(min_chars=min_chars, max_chars=max_chars)
    assert "use e.g." in str(caught.value)


# --- headings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Hoofdstuk 3 Arbeidsduur", (Kind.CHAPTER, "Hoofdstuk 3 Arbeidsduur")),
        ("HOOFDSTUK IV – VAKANTIE\n", (Kind.CHAPTER, "HOOFDSTUK IV – VAKANTIE")),
        ("Bijlage 1 Loontabellen", (Kind.CHAPTER, "Bijlage 1 Loontabellen")),
        ("  Artikel 5   Loon  ", (Kind.ARTICLE, "Artikel 5 Loon")),
        ("Artikel 5a", (Kind.ARTICLE, "Artikel 5a")),
        ("Artikel 3.2: arbeidsduur", (Kind.ARTICLE, "Artikel 3.2: arbeidsduur")),
        ("Art. 12 Vakantie", (Kind.ARTICLE, "Art. 12 Vakantie")),
        ("ARTIKEL 7 - WERKTIJDEN", (Kind.ARTICLE, "ARTIKEL 7 - WERKTIJDEN")),
    ],
)
def test_parse_heading_recognises_headings(line: str, expected: tuple[Kind, str]) -> None:
    heading = parse_heading(line)
    assert heading is not None
    assert (heading.kind, heading.title) == expected


@pytest.mark.parametrize(
    "line",
    [
        "Artikel 5 lid 2 is van toepassing op oproepkrachten.",  # running text
        "artikel 5 Loon",  # lower case: a reference at the start of a wrapped line
        "Artikel 5 Loon ........................ 12",  # table of contents
        "Artikel 5 Loon\t12",  # table of contents with a tab
        "Artikelen 3 en 4 gelden niet.",
        "Hoofdstukken 1 tot en met 3",
        "Artikel " + "5 Loon " * 40,  # far too long for a heading
        "1. Het loon bedraagt € 2.450,00.",
        "",
    ],
)
def test_parse_heading_rejects_other_lines(line: str) -> None:
    assert parse_heading(line) is None


def test_find_headings_reports_positions_and_titles() -> None:
    found = find_headings(CAO)
    assert [h.title for h in found] == [
        "Hoofdstuk 1 Algemeen",
        "Artikel 1 Definities",
        "Artikel 2 Werkingssfeer",
        "Hoofdstuk 2 Loon",
        "Artikel 5 Loon",
    ]
    assert [CAO[h.start : h.end] for h in found] == [h.title for h in found]
    assert [h.kind for h in found] == [
        Kind.CHAPTER,
        Kind.ARTICLE,
        Kind.ARTICLE,
        Kind.CHAPTER,
        Kind.ARTICLE,
    ]


# --- splitting ------------------------------------------------------------------------------


def test_empty_text_gives_no_chunks() -> None:
    assert split_text("", ChunkSettings()) == []


def test_whitespace_only_text_is_kept_as_one_chunk() -> None:
    assert split_text(" \n\f\n ", ChunkSettings()) == [Span(0, 5, "")]


def test_sections_start_at_chapter_and_article_headings() -> None:
    settings = ChunkSettings(min_chars=10, max_chars=1000)
    spans = split_text(CAO, settings)
    assert_tiles(CAO, spans, settings)
    assert [t.split("\n")[0] for t in texts(CAO, spans)] == [
        "Collectieve arbeidsovereenkomst voor de Metaal 2025-2026",
        "Hoofdstuk 1 Algemeen",
        "Artikel 1 Definities",
        "Artikel 2 Werkingssfeer",
        "Hoofdstuk 2 Loon",
        "Artikel 5 Loon",
    ]
    assert [s.heading for s in spans] == [
        "",
        "Hoofdstuk 1 Algemeen",
        "Hoofdstuk 1 Algemeen > Artikel 1 Definities",
        "Hoofdstuk 1 Algemeen > Artikel 2 Werkingssfeer",
        "Hoofdstuk 2 Loon",
        "Hoofdstuk 2 Loon > Artikel 5 Loon",
    ]


def test_article_heading_without_chapter_has_no_prefix() -> None:
    text = "Artikel 5 Loon\n" + "Het loon wordt maandelijks betaald. " * 10
    assert [s.heading for s in split_text(text, ChunkSettings(10, 1000))] == ["Artikel 5 Loon"]


def test_running_text_starting_with_artikel_does_not_start_a_section() -> None:
    text = (
        "Artikel 4 Proeftijd\nDe proeftijd duurt twee maanden. Voor oproepkrachten\n"
        "artikel 5 lid 2 geldt\nArtikel 5 lid 2 is van toepassing.\n"
    )
    spans = split_text(text, ChunkSettings(10, 1000))
    assert spans == [Span(0, len(text), "Artikel 4 Proeftijd")]


def test_long_article_is_cut_before_numbered_clauses() -> None:
    clauses = [f"{n}. " + f"Bepaling nummer {n} over de arbeidsduur. " * 2 for n in range(1, 7)]
    text = "Artikel 7 Arbeidsduur\n" + "\n".join(clauses) + "\n"
    settings = ChunkSettings(min_chars=20, max_chars=200)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    pieces = texts(text, spans)
    assert len(pieces) > 1
    assert pieces[0].startswith("Artikel 7 Arbeidsduur\n1. ")
    for piece in pieces[1:]:
        assert re.match(r"\d\. Bepaling", piece), piece
    assert {s.heading for s in spans} == {"Artikel 7 Arbeidsduur"}


def test_sub_clauses_and_lettered_items_are_clause_boundaries() -> None:
    items = ["5.1 " + "x " * 60, "5.2 " + "y " * 60, "a. " + "z " * 60, "b) " + "w " * 60]
    text = "\n".join(items) + "\n"
    spans = split_text(text, ChunkSettings(min_chars=10, max_chars=140))
    assert [p[:4] for p in texts(text, spans)] == ["5.1 ", "5.2 ", "a. z", "b) w"]


def test_paragraphs_are_used_when_there_are_no_clauses() -> None:
    paragraph = "De werkgever draagt zorg voor een goede werkplek. " * 3
    text = f"{paragraph}\n\n{paragraph}\n \n{paragraph}\f{paragraph}"
    settings = ChunkSettings(min_chars=10, max_chars=200)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    assert [p.rstrip() for p in texts(text, spans)] == [paragraph.rstrip()] * 4


def test_long_paragraph_is_cut_after_sentence_ends() -> None:
    text = "Dit is zin nummer een met wat tekst. " * 20
    settings = ChunkSettings(min_chars=10, max_chars=150)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    for piece in texts(text, spans)[:-1]:
        assert piece.endswith(". ")
        assert len(piece) > 150 - len("Dit is zin nummer een met wat tekst. ")


def test_text_without_sentences_is_cut_at_whitespace() -> None:
    text = " ".join(f"woord{n}" for n in range(200))
    settings = ChunkSettings(min_chars=10, max_chars=100)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    for piece in texts(text, spans)[:-1]:
        assert piece.endswith(" ")
        assert not piece[0].isspace()


def test_text_without_whitespace_is_cut_hard_at_max_chars() -> None:
    text = "x" * 1050
    settings = ChunkSettings(min_chars=10, max_chars=100)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    assert [s.end - s.start for s in spans] == [100] * 10 + [50]


def test_long_unbroken_word_inside_a_paragraph_only_is_cut_hard() -> None:
    text = "Kort begin. " + "y" * 250 + " en een staart."
    settings = ChunkSettings(min_chars=10, max_chars=100)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    assert texts(text, spans)[0] == "Kort begin. "


# --- merging --------------------------------------------------------------------------------


def test_small_article_merges_into_the_previous_chunk() -> None:
    first = "Artikel 13 Slotbepalingen\n" + "Deze cao vervangt de vorige cao. " * 8
    text = first + "Artikel 14 Citeertitel\nDeze cao heet cao Metaal.\n"
    settings = ChunkSettings(min_chars=100, max_chars=1000)
    spans = split_text(text, settings)
    assert spans == [Span(0, len(text), "Artikel 13 Slotbepalingen")]


def test_small_first_chunk_merges_with_the_next() -> None:
    body = "Artikel 1 Definities\n" + "In deze cao wordt verstaan onder werknemer. " * 8
    text = "CAO Metaal 2025\n\n" + body
    spans = split_text(text, ChunkSettings(min_chars=100, max_chars=1000))
    assert spans == [Span(0, len(text), "Artikel 1 Definities")]


def test_merged_chunk_takes_the_heading_of_its_largest_section() -> None:
    big = "Artikel 6 Vakantie\n" + "De werknemer heeft recht op vakantie. " * 10
    text = "Artikel 5 Loon\nKort.\n" + big
    spans = split_text(text, ChunkSettings(min_chars=50, max_chars=1000))
    assert spans == [Span(0, len(text), "Artikel 6 Vakantie")]


def test_chunks_do_not_merge_across_a_chapter_boundary() -> None:
    first = "Hoofdstuk 1 Algemeen\nArtikel 1 Duur\nDeze cao loopt een jaar.\n"
    second = "Hoofdstuk 2 Loon\nArtikel 2 Loon\nHet loon is goed.\n"
    spans = split_text(first + second, ChunkSettings(min_chars=100, max_chars=1000))
    assert texts(first + second, spans) == [first, second]
    assert [s.heading for s in spans] == [
        "Hoofdstuk 1 Algemeen > Artikel 1 Duur",
        "Hoofdstuk 2 Loon > Artikel 2 Loon",
    ]


def test_chapter_heading_alone_joins_the_article_that_follows() -> None:
    article = "Artikel 5 Loon\n" + "Het loon wordt per maand betaald. " * 8
    text = "Hoofdstuk 2 Loon\n\n" + article
    spans = split_text(text, ChunkSettings(min_chars=100, max_chars=1000))
    assert spans == [Span(0, len(text), "Hoofdstuk 2 Loon > Artikel 5 Loon")]


def test_table_of_contents_of_heading_lines_is_packed_together() -> None:
    toc = "".join(f"Hoofdstuk {n} Onderwerp {n}\nArtikel {n} Regel {n}\n" for n in range(1, 9))
    spans = split_text(toc, ChunkSettings(min_chars=100, max_chars=1000))
    # the chapter line (24 characters) outweighs the article line (18)
    assert spans == [Span(0, len(toc), "Hoofdstuk 1 Onderwerp 1")]


def test_small_chunk_stays_when_no_neighbour_has_room() -> None:
    big = "Artikel 1 Lang\n" + "a" * 90 + "\n"
    small = "Artikel 2 Kort\nb\n"
    text = big + small + big.replace("1 Lang", "3 Lang")
    settings = ChunkSettings(min_chars=50, max_chars=110)
    spans = split_text(text, settings)
    assert_tiles(text, spans, settings)
    assert texts(text, spans)[1] == small


def test_page_breaks_and_crlf_are_line_breaks() -> None:
    text = CAO.replace("\n", "\r\n")
    spans = split_text(text, ChunkSettings(min_chars=10, max_chars=1000))
    assert [s.heading for s in spans][-1] == "Hoofdstuk 2 Loon > Artikel 5 Loon"
    for piece in texts(text, spans)[:-1]:
        assert piece.endswith("\r\n")
    paged = "Artikel 1 Begin\nTekst.\fArtikel 2 Vervolg\nMeer tekst.\f"
    spans = split_text(paged, ChunkSettings(min_chars=5, max_chars=1000))
    assert texts(paged, spans) == ["Artikel 1 Begin\nTekst.\f", "Artikel 2 Vervolg\nMeer tekst.\f"]


# --- properties on random input -------------------------------------------------------------

_FRAGMENTS = (
    "Hoofdstuk 2 Loon",
    "HOOFDSTUK III VAKANTIE",
    "Bijlage A Loontabel",
    "Artikel 5 Loon",
    "Artikel 5a",
    "Art. 12 Vakantie",
    "Artikel 5 lid 2 is van toepassing.",
    "1. Het loon bedraagt € 2.450,00.",
    "5.1 De werkgever betaalt.",
    "a. werkgever: de onderneming;",
    "- opsomming",
    "Een gewone zin.",
    "nog meer tekst zonder punt",
    "x" * 37,
    "ééé € ß 😀",
    "Artikel 1 Inhoud ........ 3",
)
_SEPARATORS = ("\n", "\n\n", "\r\n", "\r", "\f", "\n\f\n", " ", "  ", "\t", "", ". ", "\n \n")


def random_text(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 60)):
        parts.append(rng.choice(_FRAGMENTS) if rng.random() < 0.8 else "y" * rng.randint(1, 500))
        parts.append(rng.choice(_SEPARATORS))
    return "".join(parts)


def test_random_texts_keep_every_invariant() -> None:
    rng = random.Random(20250701)
    for _ in range(600):
        text = random_text(rng)
        min_chars = rng.randint(1, 120)
        settings = ChunkSettings(min_chars=min_chars, max_chars=rng.randint(min_chars + 1, 400))
        spans = split_text(text, settings)
        assert_tiles(text, spans, settings)
        headings = find_headings(text)
        titles = {h.title for h in headings}
        chapters = {h.start for h in headings if h.kind is Kind.CHAPTER}
        for span in spans:
            assert span.heading == "" or span.heading.split(" > ")[-1] in titles
            inner = [c for c in chapters if span.start < c < span.end]
            # a chunk crosses a chapter boundary only after nothing but headings
            assert all(heading_only(text, span.start, c) for c in inner)
        for before, after in itertools.pairwise(spans):
            merged_size = after.end - before.start
            small = min(before.end - before.start, after.end - after.start) < settings.min_chars
            if small and merged_size <= settings.max_chars:
                # only a chapter boundary after body text may keep a small chunk apart
                assert after.start in chapters
                assert not heading_only(text, before.start, before.end)


def test_random_texts_split_alike_on_every_run() -> None:
    rng = random.Random(7)
    text = "".join(random_text(rng) for _ in range(20))
    settings = ChunkSettings(min_chars=50, max_chars=300)
    assert split_text(text, settings) == split_text(text, settings)


# --- size and speed -------------------------------------------------------------------------


def cao_of_size(size: int) -> str:
    rng = random.Random(3)
    words = [
        "de",
        "werkgever",
        "werknemer",
        "loon",
        "betaalt",
        "per",
        "maand",
        "uur",
        "toeslag",
        "vakantie",
        "dagen",
    ]
    parts: list[str] = []
    article = 0
    while sum(map(len, parts)) < size:
        parts.append(f"Hoofdstuk {len(parts)} Onderwerp\n\n")
        for _ in range(10):
            article += 1
            parts.append(f"Artikel {article} Titel\n")
            for clause in range(1, rng.randint(2, 10)):
                sentence = " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))
                parts.append(f"{clause}. {sentence}.\n" + ("\n\f\n" if clause % 7 == 0 else ""))
    return "".join(parts)[:size]


@pytest.mark.parametrize(
    "text",
    [cao_of_size(3_000_000), "woord " * 500_000, "\n" * 3_000_000, "1. a\n" * 600_000],
    ids=["cao", "one-line", "newlines", "tiny-clauses"],
)
def test_three_megabytes_tile_correctly(text: str) -> None:
    # Speed is measured in bench/ (make bench-chunk), never asserted here.
    settings = ChunkSettings()
    assert_tiles(text, split_text(text, settings), settings)


# --- the stage ------------------------------------------------------------------------------


def make_work(text: str, path: str = "/data/in/cao-metaal.pdf") -> Work:
    source = SourceFile(path=Path(path), input_root=Path("/data/in"), sha256="0" * 64, size=1)
    return Work(source=source, parsed=ParsedDocument("CAO", 1, text, "pdf"))


def test_stage_fills_chunks_with_stable_ids_and_exact_text() -> None:
    stage = ChunkStage(ChunkSettings(min_chars=10, max_chars=1000))
    assert stage.name == "chunk"
    work = stage.run(make_work(CAO))
    key = hashlib.sha256(b"/data/in/cao-metaal.pdf").hexdigest()[:16]
    assert [c.id for c in work.chunks] == [f"{key}:{i:05d}" for i in range(6)]
    assert [c.index for c in work.chunks] == list(range(6))
    assert "".join(c.text for c in work.chunks) == CAO
    for chunk in work.chunks:
        assert CAO[chunk.start : chunk.end] == chunk.text
    assert work.chunks[-1].heading == "Hoofdstuk 2 Loon > Artikel 5 Loon"
    assert work.warnings == ()
    assert stage.run(make_work(CAO)).chunks == work.chunks


def test_stage_ids_differ_per_path() -> None:
    stage = ChunkStage(ChunkSettings())
    one = stage.run(make_work(CAO, "/data/in/a.txt")).chunks[0].id
    other = stage.run(make_work(CAO, "/data/in/b.txt")).chunks[0].id
    assert one.split(":")[0] != other.split(":")[0]
    assert one.endswith(":00000")


def test_stage_on_empty_text_gives_no_chunks_and_a_warning() -> None:
    work = ChunkStage(ChunkSettings()).run(make_work(""))
    assert work.chunks == ()
    assert work.warnings == ("no text to chunk",)


def test_stage_requires_a_parsed_document() -> None:
    source = SourceFile(path=Path("/in/x.txt"), input_root=Path("/in"), sha256="0", size=0)
    with pytest.raises(RuntimeError, match="not parsed"):
        ChunkStage(ChunkSettings()).run(Work(source=source))
