"""Every format real Dutch CAOs use, one test case each: a format that stops being recognised
fails its own case. The same formats, in whole documents, are scored by `make bench-quality`
on tests/gold (test_gold.py keeps each gold document at its score)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.pipeline.analyze import (
    AnalyzeStage,
    find_amounts,
    find_dates,
    find_defined_terms,
    find_percentages,
    find_references,
)
from lexi_maint.pipeline.articles import Kind, find_headings, resolve_reference
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.graphdoc import build_graph_document

# --- article and chapter headings ------------------------------------------------------------

# (format, text, the line that must be a heading, its kind, its key)
HEADINGS = [
    ("Artikel N Title", "Artikel 5 Loon\n", Kind.ARTICLE, "5"),
    ("lettered number", "Artikel 5a Toeslag koelcel\n", Kind.ARTICLE, "5a"),
    ("dotted lettered number", "Art. 12.3b: Dienstreizen\n", Kind.ARTICLE, "12.3b"),
    ("ARTIKEL upper case, dash", "ARTIKEL 1 - DEFINITIES\n", Kind.ARTICLE, "1"),
    ("ART. with a colon", "ART. 2: WERKINGSSFEER\n", Kind.ARTICLE, "2"),
    ("Art. with a dot", "Art. 3. Proeftijd\n", Kind.ARTICLE, "3"),
    ("en dash", "Artikel 4 – Arbeidsduur\n", Kind.ARTICLE, "4"),
    ("colon", "Artikel 7: Ziekte\n", Kind.ARTICLE, "7"),
    ("upper-case ARTIKEL without separator", "ARTIKEL 9 PENSIOEN\n", Kind.ARTICLE, "9"),
    ("pipe", "Artikel 3.1 | Vaststellen van functies\n", Kind.ARTICLE, "3.1"),
    ("number only", "Artikel 14\n", Kind.ARTICLE, "14"),
    ("§ chapter with a pipe", "§2 | SALARIS\n", Kind.CHAPTER, ""),
    ("§ chapter with a space", "§ 3 Arbeidsduur\n", Kind.CHAPTER, ""),
    ("HOOFDSTUK upper case", "HOOFDSTUK 4 ARBEIDSDUUR\n", Kind.CHAPTER, ""),
    ("Hoofdstuk", "Hoofdstuk 3 Beloning\n", Kind.CHAPTER, ""),
    ("Bijlage", "Bijlage 1 Loontabellen\n", Kind.CHAPTER, "bijlage 1"),
    ("BIJLAGE Roman", "BIJLAGE II SALARISSCHALEN\n", Kind.CHAPTER, "bijlage ii"),
    (
        "Bijlage with a pipe",
        "Bijlage 1 | Salaristabel per 1 juli 2025\n",
        Kind.CHAPTER,
        "bijlage 1",
    ),
]


@pytest.mark.parametrize(("fmt", "text", "kind", "key"), HEADINGS, ids=[h[0] for h in HEADINGS])
def test_heading_format_is_recognised(fmt: str, text: str, kind: Kind, key: str) -> None:
    found = find_headings("Inleiding.\n" + text + "Tekst van het artikel.\n")
    assert [(h.kind, h.key, h.title) for h in found] == [(kind, key, text.strip())]


BARE = "HOOFDSTUK 4 ARBEIDSDUUR\n\n4.1 Normale arbeidsduur\nTekst.\n4.2 Overwerk\nTekst.\n"


def test_bare_dotted_headings_under_an_upper_case_chapter_are_articles() -> None:
    found = find_headings(BARE)
    assert [(h.kind, h.key) for h in found] == [
        (Kind.CHAPTER, ""),
        (Kind.ARTICLE, "4.1"),
        (Kind.ARTICLE, "4.2"),
    ]
    assert find_headings("§4 | ARBEIDSDUUR\n4.1 Normale arbeidsduur\n")[1].key == "4.1"


# (format, text, the article keys find_headings must report: none of the tricky lines)
NOT_HEADINGS = [
    (
        "numbered definition",
        "HOOFDSTUK 1 ALGEMEEN\n1.1 Definities\n1. Werkgever: De Klaver.\n",
        ["1.1"],
    ),
    ("clause sentence", "HOOFDSTUK 4 TIJD\n4.1 De werknemer werkt 38 uur per week.\n", []),
    ("clause with a colon", "HOOFDSTUK 4 TIJD\n4.1 Voor overwerk geldt: een toeslag\n", []),
    (
        "long wrapped clause",
        "HOOFDSTUK 4 TIJD\n4.1 De werknemer die op verzoek van de werkgever langer werkt dan\n",
        [],
    ),
    (
        "wrapped clause ending in a function word",
        "HOOFDSTUK 2 LOON\n2.1 Het loon wordt betaald op de\nlaatste werkdag.\n",
        [],
    ),
    (
        "wrapped clause going on in lower case",
        "HOOFDSTUK 2 LOON\n2.1 Het loon wordt maandelijks betaald\nop de laatste werkdag.\n",
        [],
    ),
    ("other chapter's number", "HOOFDSTUK 4 TIJD\n5.1 Salarisschalen\n", []),
    ("sub-clause 4.1.1", "HOOFDSTUK 4 TIJD\n4.1 Arbeidsduur\n4.1.1 Nachtdienst\n", ["4.1"]),
    ("clause inside an Artikel", "Hoofdstuk 3 Tijd\nArtikel 3 Arbeidsduur\n3.3 Rooster\n", ["3"]),
    ("bare number in an annex", "Bijlage 2 Overzicht\n3.1       Arbeidsduur       2025\n", []),
    ("no chapter at all", "Cao\n4.1 Normale arbeidsduur\n", []),
    ("table row", "HOOFDSTUK 5 LOON\n0 fj   1.877,61   1.943,93\n", []),
    ("date", "HOOFDSTUK 1 DUUR\n1.7.2025 Ingangsdatum\n", []),
    ("table of contents", "HOOFDSTUK 4 TIJD\n4.1 Normale arbeidsduur ........ 3\n", []),
    ("running text", "Tekst\nArtikel 5 lid 2 is van toepassing op oproepkrachten.\n", []),
    ("lower-case reference", "Tekst\nartikel 5 Loon\n", []),
    ("statute", "Tekst\nArtikel 7:610 BW\n", []),
]


@pytest.mark.parametrize(("fmt", "text", "keys"), NOT_HEADINGS, ids=[n[0] for n in NOT_HEADINGS])
def test_line_that_is_not_an_article_heading(fmt: str, text: str, keys: list[str]) -> None:
    assert [h.key for h in find_headings(text) if h.kind is Kind.ARTICLE] == keys


# --- defined terms ---------------------------------------------------------------------------

TERMS = [
    ("a. term:", "In deze cao wordt verstaan onder:\na. werkgever: de onderneming;\n", "werkgever"),
    ("1. Term:", "In deze cao wordt verstaan onder:\n1. Werkgever: De Klaver B.V.\n", "Werkgever"),
    (
        '"Term":',
        'Definities\n"oproepkracht": de werknemer zonder vaste arbeidsduur;\n',
        "oproepkracht",
    ),
    (
        "Term: lines under Lid 1",
        "Lid 1\nVoor deze cao wordt verstaan onder:\nWerkgever: de stichting.\n"
        "Locatie: een gebouw.\n",
        "Locatie",
    ),
    (
        "onder X wordt verstaan",
        "Onder deeltijdwerker wordt verstaan de werknemer met",
        "deeltijdwerker",
    ),
]


@pytest.mark.parametrize(("fmt", "text", "term"), TERMS, ids=[t[0] for t in TERMS])
def test_defined_term_format(fmt: str, text: str, term: str) -> None:
    assert term in find_defined_terms(text)


def test_term_lines_need_a_definitions_context_and_a_list() -> None:
    assert find_defined_terms("Looptijd: 1 april 2025.\nPartijen: FNV.\n") == []
    assert find_defined_terms("Verstaan onder:\nLooptijd: een jaar.\n\nPartijen: FNV.\n") == []


# --- dates, amounts, percentages -------------------------------------------------------------

DATES = [
    ("in words", "per 1 juli 2025", "2025-07-01"),
    ("dd-mm-yyyy", "per 01-07-2025", "2025-07-01"),
    ("d-m-yyyy", "per 1-9-2025", "2025-09-01"),
    ("ISO", "per 2025-10-01", "2025-10-01"),
    ("range in words", "van 1 februari tot en met 15 mei 2025", "2025-02-01"),
]


@pytest.mark.parametrize(("fmt", "text", "iso"), DATES, ids=[d[0] for d in DATES])
def test_date_format(fmt: str, text: str, iso: str) -> None:
    assert iso in find_dates(text)


AMOUNTS = [
    ("€ before", "een vergoeding van € 15,50 per dienst", 15.5, ""),
    ("EUR with ,--", "met een minimum van EUR 1.950,-- bruto", 1950.0, ""),
    ("euro after", "een uitkering van 1.250 euro", 1250.0, ""),
    ("€ in a table cell", "Functiegroep I     € 2.190,20\n", 2190.2, ""),
    (
        "bare, caption in euro",
        "Bedragen in euro's per maand.\n\nSchaal   Minimum    Maximum\n4   2.357,12   2.911,40\n",
        2911.4,
        "",
    ),
    (
        "bare, caption says maandlonen",
        "De bedragen zijn bruto maandlonen.\nFunctiegroep   0 fj   1 fj\nA   2.207,48   2.263,19\n",
        2207.48,
        "",
    ),
    ("bare hourly wage, € caption", "Uurlonen in €\nSchaal 6   trede 1   15,42\n", 15.42, ""),
    (
        "bare, heading says wages",
        "Trede   Bedrag\n0       2.648,31\n",
        2648.31,
        "Bijlage 3 Loontabel",
    ),
]


@pytest.mark.parametrize(("fmt", "text", "value", "heading"), AMOUNTS, ids=[a[0] for a in AMOUNTS])
def test_amount_format(fmt: str, text: str, value: float, heading: str) -> None:
    assert value in [a["value"] for a in find_amounts(text, heading)]


NOT_AMOUNTS = [
    ("bare number in prose", "De werknemer ontvangt 1.877,61 per maand bij goed gedrag.", ""),
    ("hours table", "Roostervrije uren per jaar\nArbeidsduur   Uren\n38 uur        52,00\n", ""),
    (
        "hours table in a wage annex",
        "Diensttijden (in uren):\nVroeg   8,00\n",
        "Bijlage 3 Loontabel",
    ),
    (
        "years and article numbers",
        "Overzicht\nArtikel   Onderwerp   Jaar\n3.1   Arbeidsduur   2025\n",
        "",
    ),
    ("table without a caption", "Schaal   Minimum\n4        2.357,12\n", ""),
    ("percentages in a wage table", "Salaris in euro\n18 jaar    70,00%\n", ""),
]


@pytest.mark.parametrize(("fmt", "text", "heading"), NOT_AMOUNTS, ids=[n[0] for n in NOT_AMOUNTS])
def test_numbers_that_are_not_amounts(fmt: str, text: str, heading: str) -> None:
    assert find_amounts(text, heading) == []


PERCENTAGES = [
    ("%", "verhoogd met 2,5%", 2.5),
    ("space before %", "een toeslag van 4,5 % van het uurloon", 4.5),
    ("procent", "een eindejaarsuitkering van 8,3 procent", 8.3),
    ("whole procent", "verhoogd met 3 procent", 3.0),
    ("table cell", "Drieploegendienst    17,0%\n", 17.0),
]


@pytest.mark.parametrize(("fmt", "text", "value"), PERCENTAGES, ids=[p[0] for p in PERCENTAGES])
def test_percentage_format(fmt: str, text: str, value: float) -> None:
    assert [p["value"] for p in find_percentages(text)] == [value]


# --- references ------------------------------------------------------------------------------

REFERENCES = [
    ("artikel N", "volgens artikel 5 van deze cao", "5"),
    ("art. N lid M", "met inachtneming van art. 5 lid 2.", "5"),
    ("artikel Na", "de loontabel in artikel 5a.", "5a"),
    ("art. N.Mb", "een geschil over art. 12.3b beslist", "12.3b"),
    ("als bedoeld in N.M", "de arbeidsduur als bedoeld in 4.1.", "4.1"),
    ("zie N.M", "vrije tijd, zie 4.4.", "4.4"),
    ("genoemd in N.M", "het loon genoemd in 5.1:", "5.1"),
    ("bijlage N", "de salaristabel in bijlage 1.", "bijlage 1"),
    ("bijlage Roman", "de salarissen in bijlage I verhoogd", "bijlage i"),
    ("de artikelen N en M", "en de artikelen 3 en 4.", "4"),
]


@pytest.mark.parametrize(("fmt", "text", "article"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_reference_format(fmt: str, text: str, article: str) -> None:
    found = [r["article"].lower() for r in find_references(text)]
    assert article in found


@pytest.mark.parametrize(
    "text",
    [
        "op grond van artikel 7:610 BW",
        "artikel 3 van de Arbeidstijdenwet",
        "als bedoeld in lid 2",
        "per 1.7.2025 bedoeld in 2025",
        "bedoeld in 4,5 procent",
        "volgens de bijlage en de tabel",
        "de bijlage is bijgevoegd",
    ],
)
def test_not_a_reference(text: str) -> None:
    assert find_references(text) == []


@pytest.mark.parametrize(
    ("reference", "key"),
    [("Artikel 5a", "5a"), ("art. 5 lid 2", "5"), ("5.2", "5"), ("4.1", "4.1"),
     ("Bijlage 1", "bijlage 1"), ("bijlage I", "bijlage i"), ("99", None)],
)  # fmt: skip
def test_references_resolve_to_keys(reference: str, key: str | None) -> None:
    keys = {"5", "5a", "4.1", "bijlage 1", "bijlage i"}
    assert resolve_reference(reference, keys) == key


# --- every article addressable ---------------------------------------------------------------

SHORT = """Cao met korte artikelen

Artikel 1 Werkgever
Werkgever is Koeriersdienst De Ketting B.V. te Utrecht.

Artikel 2 Koerier
Koerier is de werknemer die met de fiets pakketten bezorgt.

Artikel 3 Proeftijd
De proeftijd is een maand. Zie ook artikel 2.

HOOFDSTUK 4 TIJD

4.1 Arbeidsduur
De arbeidsduur is 32 uur.

4.2 Overwerk
Overwerk boven de arbeidsduur als bedoeld in 4.1 wordt vergoed; zie artikel 1.
"""


@pytest.mark.parametrize("min_chars", [50, 200, 400])
def test_every_article_is_held_by_a_chunk_and_references_resolve_to_it(min_chars: int) -> None:
    source = SourceFile(Path("/in/kort.txt"), Path("/in"), "0" * 64, len(SHORT))
    work = Work(source, ParsedDocument("kort", 0, SHORT, "utf-8"))
    work = AnalyzeStage().run(ChunkStage(ChunkSettings(min_chars=min_chars)).run(work))
    doc = build_graph_document(work)
    holder: dict[str, str] = {}
    for chunk in doc.chunks:
        for key in chunk["articles"]:
            holder.setdefault(key, chunk["id"])
    assert set(holder) == {"1", "2", "3", "4.1", "4.2"}
    for key, chunk_id in holder.items():
        chunk = next(c for c in doc.chunks if c["id"] == chunk_id)
        line = next(h for h in find_headings(SHORT) if h.key == key)
        assert chunk["start"] <= line.start < chunk["end"]
    edges = {(r["source"], r["target"], r["article"]) for r in doc.references}
    source_of = {c["id"]: c for c in doc.chunks}
    for ref_text, article in (
        ("artikel 2.", "2"),
        ("bedoeld in 4.1", "4.1"),
        ("artikel 1.\n", "1"),
    ):
        at = SHORT.index(ref_text)
        src = next(c["id"] for c in doc.chunks if c["start"] <= at < c["end"])
        if src != holder[article]:
            assert (src, holder[article], article) in edges
    assert all(source_of[t]["articles"] for _, t, _ in edges)
    assert doc.unresolved_references == 0
