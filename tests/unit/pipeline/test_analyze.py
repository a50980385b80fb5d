"""Tests of the embedded analyzer: each extractor on real Dutch CAO sentences, and the stage."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.errors import ErrorClass
from lexi_maint.pipeline.analyze import (
    AnalyzeStage,
    analyze_chunk,
    dutch_number,
    find_amounts,
    find_dates,
    find_defined_terms,
    find_parties,
    find_percentages,
    find_references,
    own_article,
    section_title,
)
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import Chunk, ParsedDocument, SourceFile, Work
from lexi_maint.pipeline.schema import FIELDS, Amount, Percentage, Reference, SchemaError


def chunk(text: str, heading: str = "") -> Chunk:
    return Chunk(id="doc:00000", index=0, start=0, end=len(text), heading=heading, text=text)


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("2.450,00", 2450.0),
        ("2.450", 2450.0),
        ("2450,50", 2450.5),
        ("1.234.567,89", 1234567.89),
        ("2.450,-", 2450.0),
        ("12,--", 12.0),
        ("12.50", 12.5),
        ("2,450.00", 2450.0),
        ("3,5", 3.5),
        ("3.5", 3.5),
        ("0.125", 0.125),
        ("100", 100.0),
    ],
)
def test_dutch_number(written: str, value: float) -> None:
    assert dutch_number(written) == value


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "dates"),
    [
        ("Deze cao treedt in werking op 1 januari 2025.", ["2025-01-01"]),
        ("Met ingang van 01-07-2025 stijgen de lonen.", ["2025-07-01"]),
        ("Met ingang van 1-7-2025 stijgen de lonen.", ["2025-07-01"]),
        ("De uitkering volgt op 2025-07-01.", ["2025-07-01"]),
        ("Per 15/3/2026 en per 1.10.2026 geldt de nieuwe tabel.", ["2026-03-15", "2026-10-01"]),
        (
            "Uiterlijk 31 Mei 2025 of 1 okt. 2025 of 3 mrt 2026.",
            ["2025-05-31", "2025-10-01", "2026-03-03"],
        ),
        ("De looptijd is van 1 januari t/m 31 december 2025.", ["2025-01-01", "2025-12-31"]),
        ("Van 1 december tot en met 31 januari 2026.", ["2025-12-01", "2026-01-31"]),
        ("Op 1 januari 2025 en nogmaals op 01-01-2025.", ["2025-01-01"]),
    ],
)
def test_find_dates(sentence: str, dates: list[str]) -> None:
    assert find_dates(sentence) == dates


@pytest.mark.parametrize(
    "sentence",
    [
        "Jaarlijks op 1 januari wordt het loon verhoogd.",  # no year: skipped
        "Per 31 februari 2025 vervalt de toeslag.",  # impossible date
        "Bel 030-1234567 of 06-12345678 voor vragen.",  # phone numbers
        "Zie artikel 12 en de tabel op pagina 3.",
        "Het bedrag is € 2.450,00 per 12 maanden.",
        "Datum 2025-13-01 en 32-01-2025 bestaan niet.",
        "In 2025 is de bijdrage 1.250.",
    ],
)
def test_find_dates_negatives(sentence: str) -> None:
    assert find_dates(sentence) == []


# --- amounts and percentages -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Het loon bedraagt € 2.450,00 per maand.", [(2450.0, "€ 2.450,00")]),
        ("Het loon bedraagt EUR 2.450 per maand.", [(2450.0, "EUR 2.450")]),
        ("De toeslag is €2450,50 bruto.", [(2450.5, "€2450,50")]),
        ("Een eenmalige uitkering van 2.450,00 euro bruto.", [(2450.0, "2.450,00 euro")]),
        ("De vergoeding is € 12,- per dag.", [(12.0, "€ 12,-")]),
        ("Het budget bedraagt € 1,5 miljoen.", [(1500000.0, "€ 1,5 miljoen")]),
        ("Per 1 januari 2025 € 2.600,00", [(2600.0, "€ 2.600,00")]),
        ("Tussen € 100 en 250 euro; opnieuw € 100.", [(100.0, "€ 100"), (250.0, "250 euro")]),
        ("Hourly: EUR 14.06 or € 2,450.00.", [(14.06, "EUR 14.06"), (2450.0, "€ 2,450.00")]),
    ],
)
def test_find_amounts(sentence: str, expected: list[tuple[float, str]]) -> None:
    found = find_amounts(sentence)
    assert [(a["value"], a["text"]) for a in found] == expected
    assert {a["currency"] for a in found} == {"EUR"}


@pytest.mark.parametrize(
    "sentence",
    [
        "Zie artikel 12 lid 3 van deze cao.",  # article number
        "Bel 030-1234567 of 06-12345678.",  # phone numbers
        "Er werken 2.450 werknemers in 2025 in de sector.",  # numbers without currency
        "Het loon stijgt met 3,5% per 1 juli 2025.",
        "De Europese munt heet euro.",
    ],
)
def test_find_amounts_negatives(sentence: str) -> None:
    assert find_amounts(sentence) == []


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Het loon stijgt met 3,5% per 1 juli 2025.", [(3.5, "3,5%")]),
        ("Het loon stijgt met 3.5 % per 1 juli 2025.", [(3.5, "3.5 %")]),
        ("Het loon stijgt met 3,5 procent.", [(3.5, "3,5 procent")]),
        ("Een verhoging van 0,5 procentpunt en 2 pct.", [(0.5, "0,5 procentpunt"), (2.0, "2 pct")]),
        ("Toeslag 100% op zondag en 50% op zaterdag.", [(100.0, "100%"), (50.0, "50%")]),
    ],
)
def test_find_percentages(sentence: str, expected: list[tuple[float, str]]) -> None:
    assert [(p["value"], p["text"]) for p in find_percentages(sentence)] == expected


def test_find_percentages_negatives() -> None:
    assert find_percentages("Het loon bedraagt € 3,50 per uur volgens artikel 3.5.") == []


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("Zie artikel 12 voor de vakantie.", [("12", "artikel 12")]),
        ("Zoals bepaald in art. 5 lid 2 van deze cao.", [("5", "art. 5 lid 2")]),
        (
            "De artikelen 3 en 4 gelden niet.",
            [("3", "artikelen 3 en 4"), ("4", "artikelen 3 en 4")],
        ),
        ("Artikel 5a, lid 1 sub b geldt ook.", [("5a", "Artikel 5a, lid 1 sub b")]),
        ("Volgens artikel 7 lid 2 en 3 en artikel 7 lid 4.", [("7", "artikel 7 lid 2 en 3")]),
        (
            "De artikelen 3 t/m 5 en artikel 3.2 gelden.",
            [
                ("3", "artikelen 3 t/m 5"),
                ("4", "artikelen 3 t/m 5"),
                ("5", "artikelen 3 t/m 5"),
                ("3.2", "artikel 3.2"),
            ],
        ),
    ],
)
def test_find_references(sentence: str, expected: list[tuple[str, str]]) -> None:
    assert [(r["article"], r["text"]) for r in find_references(sentence)] == expected


def test_references_skip_statutes() -> None:
    sentence = (
        "Artikel 7:610 BW, artikel 3 van de Arbeidstijdenwet, art. 4 Wet minimumloon en "
        "artikel 19 WW zijn van toepassing, net als artikel 9 van deze cao."
    )
    assert [r["article"] for r in find_references(sentence)] == ["9"]


def test_references_skip_heading_lines_and_the_own_article() -> None:
    text = (
        "Artikel 5 Loon\n"
        "1. Het loon wordt betaald volgens artikel 5 lid 2 en artikel 6.\n"
        "Artikel 6 Vakantie\n"
        "De werknemer heeft recht op vakantie, zie ook artikel 12.\n"
    )
    found = find_references(text, own="5")
    assert [r["article"] for r in found] == ["6", "12"]
    assert found[0]["text"] == "artikel 6"


def test_heading_lines_of_merged_articles_are_not_references() -> None:
    text = "Artikel 13 Slot\nDeze cao vervangt de vorige.\n\fArtikel 14 Citeertitel\nCao Metaal.\n"
    assert find_references(text, own="13") == []
    assert find_references("In de tekst: Artikel 14 Citeertitel.") == [
        {"article": "14", "text": "Artikel 14"}
    ]


def test_own_article_from_heading() -> None:
    assert own_article("Hoofdstuk 2 Loon > Artikel 5a Loon") == "5a"
    assert own_article("Art. 12 Vakantie") == "12"
    assert own_article("Hoofdstuk 2 Loon") == ""


# --- defined terms ---------------------------------------------------------------------------


def test_defined_terms_from_a_definition_list() -> None:
    text = (
        "In deze cao wordt verstaan onder:\n"
        "a. werkgever: de onderneming die lid is van de vereniging;\n"
        "b. werknemer: degene die in dienst is van de werkgever;\n"
        "c. parttime werknemer: de werknemer met een kortere arbeidsduur;\n"
        "d. de Stichting: Stichting Sociaal Fonds Metaal.\n"
    )
    assert find_defined_terms(text) == ["werkgever", "werknemer", "parttime werknemer", "Stichting"]


def test_definition_list_in_a_later_chunk_is_recognised_by_its_heading() -> None:
    text = "m. roosterdienst: een dienst volgens rooster;\nn. standplaats: de vaste werkplek.\n"
    assert find_defined_terms(text, "Artikel 1 Definities") == ["roosterdienst", "standplaats"]
    assert find_defined_terms(text, "Artikel 9 Werktijden") == []


@pytest.mark.parametrize(
    ("sentence", "terms"),
    [
        ("Onder werknemer wordt in deze cao verstaan: iedere werknemer.", ["werknemer"]),
        ("Onder de werkgever wordt verstaan de onderneming.", ["werkgever"]),
        ("In deze cao wordt onder 'loon' verstaan: het bruto maandloon.", ["loon"]),
        ('Philips B.V., hierna te noemen "werkgever", en FNV.', ["werkgever"]),
        ("De regeling, hierna „de Regeling Vroegpensioen”, geldt.", ["Regeling Vroegpensioen"]),
    ],
)
def test_defined_terms_in_running_text(sentence: str, terms: list[str]) -> None:
    assert find_defined_terms(sentence) == terms


@pytest.mark.parametrize(
    "sentence",
    [
        "a. werkgever: zorgt voor een veilige werkplek.",  # a list, but no definitions context
        "Werk tussen 's avonds en 's morgens geldt als nachtwerk voor auto's.",
        'Hij zei: "Dit is een hele lange zin, met komma\'s en meer." tegen de werkgever.',
        "Deze cao heeft geen begrippen nodig.",
    ],
)
def test_defined_terms_negatives(sentence: str) -> None:
    assert find_defined_terms(sentence) == []


# --- parties ---------------------------------------------------------------------------------


def test_known_parties_in_order_without_duplicates() -> None:
    text = (
        "Deze cao is gesloten tussen Koninklijke Metaalunie en FME-CWM enerzijds en FNV, "
        "CNV Vakmensen, De Unie en AVV anderzijds. FNV en de Metaalunie tekenen."
    )
    assert find_parties(text) == [
        "Koninklijke Metaalunie",
        "FME",
        "FNV",
        "CNV Vakmensen",
        "De Unie",
        "AVV",
    ]


def test_avv_as_declaration_is_not_a_party() -> None:
    text = (
        "Na AVV van deze cao door de minister, en bij het AVV-besluit van FNV is de cao "
        "algemeen verbindend."
    )
    assert find_parties(text) == ["FNV"]


def test_parties_from_an_established_at_list() -> None:
    text = (
        "De ondergetekenden:\n"
        "1. Philips Nederland B.V., gevestigd te Eindhoven, partij ter ene zijde, en\n"
        "2. FNV, gevestigd te Utrecht,\n"
        "3. Stichting Vakbond ABC (VBA), statutair gevestigd te Amsterdam,\n"
        "partijen ter andere zijde.\n"
    )
    assert find_parties(text) == ["Philips Nederland B.V.", "FNV", "Stichting Vakbond ABC"]


def test_established_name_around_a_known_party_gives_the_known_name() -> None:
    text = "Partijen:\n2. De vereniging FNV, gevestigd te Utrecht,\n"
    assert find_parties(text) == ["FNV"]


def test_established_at_outside_a_parties_context_is_not_a_party() -> None:
    assert find_parties("Het Pensioenfonds Metaal, gevestigd te Den Haag, voert uit.") == []


def test_no_parties_in_ordinary_text() -> None:
    assert find_parties("De werkgever betaalt het loon uiterlijk op de laatste werkdag.") == []


# --- the whole chunk -------------------------------------------------------------------------

ARTICLE_5 = (
    "Artikel 5 Loon\n"
    "1. Per 1 januari 2025 bedraagt het loon € 2.450,00 per maand (zie artikel 12).\n"
    "2. Per 1 juli 2025 stijgt het loon met 3,5%, zoals FNV en AWVN afspraken.\n"
    "3. Dit artikel 5 geldt niet voor oproepkrachten; bel 030-1234567.\n"
)


def test_analyze_chunk_returns_every_field_of_the_schema() -> None:
    result = analyze_chunk(chunk(ARTICLE_5, "Hoofdstuk 2 Loon > Artikel 5 Loon"))
    assert result == {
        "section_title": "Hoofdstuk 2 Loon > Artikel 5 Loon",
        "defined_terms": [],
        "dates": ["2025-01-01", "2025-07-01"],
        "amounts": [{"value": 2450.0, "currency": "EUR", "text": "€ 2.450,00"}],
        "percentages": [{"value": 3.5, "text": "3,5%"}],
        "references": [{"article": "12", "text": "artikel 12"}],
        "parties": ["FNV", "AWVN"],
    }
    assert tuple(result) == FIELDS


def test_section_title_falls_back_to_the_first_heading_line() -> None:
    assert section_title(chunk(ARTICLE_5)) == "Artikel 5 Loon"
    assert section_title(chunk("Geen kop hier.\n")) == ""
    # without a heading, the chunk's own first heading still is not a reference to itself
    assert analyze_chunk(chunk(ARTICLE_5))["references"] == [
        {"article": "12", "text": "artikel 12"}
    ]


def make_work(text: str) -> Work:
    source = SourceFile(Path("/in/cao.txt"), Path("/in"), "0" * 64, len(text))
    return Work(source=source, parsed=ParsedDocument("cao", 0, text, "utf-8"))


def test_stage_validates_one_analysis_per_chunk_in_order() -> None:
    text = "Hoofdstuk 2 Loon\n\n" + ARTICLE_5 + "Artikel 6 Vakantie\nZie artikel 5 lid 1.\n"
    # min_chars=30: the chapter line joins article 5; article 6 (40 characters) stays apart
    work = ChunkStage(ChunkSettings(min_chars=30, max_chars=4000)).run(make_work(text))
    work = AnalyzeStage().run(work)
    assert AnalyzeStage.name == "analyze"
    assert [a.chunk_id for a in work.analyses] == [c.id for c in work.chunks]
    first = work.analyses[0]
    assert first.section_title == "Hoofdstuk 2 Loon > Artikel 5 Loon"
    assert first.amounts == (Amount(2450.0, "EUR", "€ 2.450,00"),)
    assert first.percentages == (Percentage(3.5, "3,5%"),)
    assert first.references == (Reference("12", "artikel 12"),)
    assert work.analyses[-1].references == (Reference("5", "artikel 5 lid 1"),)
    assert json.loads(json.dumps(first.to_json())) == analyze_chunk(work.chunks[0])


def test_stage_with_no_chunks_gives_no_analyses() -> None:
    assert AnalyzeStage().run(make_work("")).analyses == ()


def test_stage_reports_an_analysis_that_breaks_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: Chunk) -> dict[str, Any]:
        return {"section_title": 5, "dates": ["1 januari"]}

    monkeypatch.setattr("lexi_maint.pipeline.analyze.analyze_chunk", broken)
    work = replace(make_work(ARTICLE_5), chunks=(chunk(ARTICLE_5),))
    with pytest.raises(SchemaError) as caught:
        AnalyzeStage().run(work)
    assert caught.value.error_class is ErrorClass.SCHEMA
    assert "$.defined_terms: missing" in caught.value.problems
