"""The analyze stage, embedded: a deterministic extractor for Dutch CAO chunks.

`analyze_chunk` returns the JSON form described in `schema.py`; `AnalyzeStage` passes it
through JSON text and `schema.parse_analysis`, exactly as an LLM analyzer's reply would be.
Pure logic, no I/O. Every list keeps the order of first appearance and has no duplicates.

What is recognised (and what is deliberately not)
    section_title  the chunk's heading, else its first heading line, else "".
    defined_terms  list items in a definitions context (the chunk or its heading mentions
                   "verstaan onder", "definities", "begrippen"): "a. werkgever: ...";
                   "1. Werkgever: ...", and two or more consecutive "Werkgever: ..." lines
                   without a marker (as under "Lid 1");
                   "onder werknemer wordt (in deze cao) verstaan", "wordt onder X verstaan";
                   quoted terms of at most five words ("werknemer", „cao", 'loon'). A leading
                   "de"/"het"/"een" is dropped.
    dates          "1 januari 2025", "1 jan. 2025", "01-07-2025", "1/7/2025", "1.7.2025",
                   "2025-07-01" -> ISO. "1 januari t/m 31 december 2025" gives the first date
                   the second one's year. A date without a year ("1 januari") is skipped, as
                   are impossible dates and years outside 1900-2099.
    amounts        "€ 2.450,00", "EUR 2.450", "€2450,50", "2.450,00 euro", "€ 12,-",
                   "€ 1,5 miljoen" -> value in euro, currency "EUR", text as written. Dutch
                   notation: "," is the decimal mark and "." groups thousands ("2.450" is
                   2450); "12.50" (one dot, two decimals) and "2,450.00" (both marks) are read
                   as written in English. A currency word does not reach over a line break.
                   Numbers without a currency are amounts only in a table whose caption (up
                   to three lines above its rows, column headers included) or else the
                   chunk's heading says they are euros or wages: "1.877,61" and "2.450" in
                   "0 fj   1.877,61   1.943,93" under "Bedragen in euro's per maand". A row
                   has at most four words besides its amounts; a caption about hours
                   ("uren", "arbeidsduur") or percentages wins over a wage heading; a number
                   followed by "%", "uur", "jaar", "dagen" ... and years, hours and article
                   numbers (no cents, no thousands group) are never bare amounts.
    percentages    "3,5%", "3.5 %", "3,5 procent", "0,5 procentpunt", "2 pct" -> 3.5 ...
    references     "artikel 12", "art. 5 lid 2", "artikel 5a", "artikelen 3 en 4", "artikelen
                   3 t/m 6" (ranges of up to 50 expanded); a dotted number after "bedoeld in",
                   "genoemd in", "zie" ... ("als bedoeld in 4.1"); annexes ("bijlage 1" ->
                   article "bijlage 1"). Not references: heading lines, the chunk's
                   own article, and articles of statutes ("artikel 7:610 BW", "artikel 3 van
                   de Arbeidstijdenwet").
    parties        known unions and employer associations (FNV, CNV Vakmensen, De Unie, AWVN,
                   Koninklijke Metaalunie, ...); a bare "AVV" only next to another union
                   in the same sentence (within 40 characters) that does not speak of
                   "verbindend"; and, in a chunk that speaks of "partij(en)" or
                   "ondergetekenden", names before "gevestigd te".
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from lexi_maint.pipeline.articles import (
    ANNEX_NUMBER,
    BARE_NUMBER,
    REFERENCE_NUMBER,
    article_of_heading,
    find_headings,
)
from lexi_maint.pipeline.contract import Chunk, Work
from lexi_maint.pipeline.schema import ChunkAnalysis, parse_analysis

logger = logging.getLogger(__name__)


def _starting_with(first: str, pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compile `pattern`, whose matches start with one of the characters `first`.

    The leading lookahead lets the regex engine jump between those characters instead of
    trying the pattern at every position: about ten times faster on a 3 MB document.
    """
    return re.compile(rf"(?=[{first}])(?:{pattern})", flags)


def _unique(items: Iterable[tuple[int, str, Any]]) -> list[Any]:
    """Sort (position, key, value) triples by position; keep the first value of each key."""
    seen: set[str] = set()
    out: list[Any] = []
    for _, key, value in sorted(items, key=lambda item: item[0]):
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


# --- numbers ---------------------------------------------------------------------------------


def dutch_number(raw: str) -> float:
    """Read a number as written in Dutch ("2.450,00" -> 2450.0), see the module docstring."""
    text = raw.replace(",--", "").replace(",-", "")
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
    elif "," in text:
        decimal_mark = "," if text.count(",") == 1 else ""
    elif "." in text:
        whole, *rest = text.split(".")
        grouped = len(rest) > 1 or (len(rest[0]) == 3 and whole.lstrip("0") != "")
        decimal_mark = "" if grouped else "."
    else:
        decimal_mark = ""
    group_mark = {",": ".", ".": ",", "": ".,"}[decimal_mark]
    for mark in group_mark:
        text = text.replace(mark, "")
    return float(Decimal(text.replace(",", ".")))


# --- dates -----------------------------------------------------------------------------------

_MONTHS = {
    "januari": 1, "jan": 1, "februari": 2, "feb": 2, "febr": 2, "maart": 3, "mrt": 3, "mar": 3,
    "april": 4, "apr": 4, "mei": 5, "juni": 6, "jun": 6, "juli": 7, "jul": 7, "augustus": 8,
    "aug": 8, "september": 9, "sep": 9, "sept": 9, "oktober": 10, "okt": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12,
}  # fmt: skip
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\b\.?"
_DAY_MONTH = rf"(?<!\d)(\d{{1,2}})(?:e|ste|de)?\s+({_MONTH})"
_YEAR = r"((?:19|20)\d\d)(?!\d)"
_WRITTEN_DATE = _starting_with(r"\d", rf"{_DAY_MONTH}\s+{_YEAR}", re.IGNORECASE)
_RANGE_START = _starting_with(
    r"\d",
    rf"{_DAY_MONTH}\s+(?:tot\s+en\s+met|t/m|tot|en|-|–)\s+{_DAY_MONTH}\s+{_YEAR}",
    re.IGNORECASE,
)
_NUMERIC_DATE = _starting_with(
    r"\d", r"(?<![\d\-/.])(\d{1,2})([-/.])(\d{1,2})\2((?:19|20)\d\d)(?![\d\-/]|\.\d)"
)
_ISO_DATE = _starting_with(r"\d", r"(?<![\d\-])((?:19|20)\d\d)-(\d{2})-(\d{2})(?![\d\-])")


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _month(name: str) -> int:
    return _MONTHS[name.lower().rstrip(".")]


def find_dates(text: str) -> list[str]:
    """ISO dates (YYYY-MM-DD) written in `text`, in order of appearance."""
    found: list[tuple[int, str | None]] = []
    for m in _WRITTEN_DATE.finditer(text):
        found.append((m.start(), _iso(int(m[3]), _month(m[2]), int(m[1]))))
    for m in _RANGE_START.finditer(text):
        year, first, last = int(m[5]), (_month(m[2]), int(m[1])), (_month(m[4]), int(m[3]))
        found.append((m.start(), _iso(year if first <= last else year - 1, *first)))
    for m in _NUMERIC_DATE.finditer(text):
        found.append((m.start(), _iso(int(m[4]), int(m[3]), int(m[1]))))
    for m in _ISO_DATE.finditer(text):
        found.append((m.start(), _iso(int(m[1]), int(m[2]), int(m[3]))))
    return _unique((pos, iso, iso) for pos, iso in found if iso is not None)


# --- amounts and percentages -----------------------------------------------------------------

_AMOUNT_NUMBER = (
    r"(?<![\d.,])(?:\d{1,3}(?:\.\d{3})+(?:,(?:\d{1,2}|-{1,2}))?"  # 2.450 / 2.450,00 / 2.450,-
    r"|\d{1,3}(?:,\d{3})+\.\d{1,2}"  # 2,450.00
    r"|\d+(?:,(?:\d{1,2}|-{1,2}))?"  # 2450 / 2450,50 / 12,-
    r"|\d+\.\d{1,2})(?![.,]?\d)"  # 12.50
)
_MULTIPLIER = r"(?:\s?(miljoen|mln\.?|miljard|mrd\.?)(?![\w]))?"
_AMOUNT = _starting_with(
    r"€Ee\d",
    # a currency word does not reach over a line break: "Salaris in euro" above a table row
    rf"(?:€\s{{0,2}}|(?<![A-Za-z])(?:EUR|EURO|[Ee]uro)(?![A-Za-z])[^\S\n\r\f]{{0,2}})"
    rf"({_AMOUNT_NUMBER}){_MULTIPLIER}"
    # "2.450 euro", but not "2025 € 2.450" (a year before an amount in a table row)
    rf"|({_AMOUNT_NUMBER}){_MULTIPLIER}\s?(?:€|(?<![A-Za-z])(?:EUR|[Ee]uro)(?![A-Za-z]))"
    r"(?!\s{0,2}\d)",
)
_FACTORS = {"miljoen": 10**6, "mln": 10**6, "miljard": 10**9, "mrd": 10**9}
_PERCENT = _starting_with(
    r"\d",
    r"(?<![\d.,])(\d{1,3}(?:\.\d{3})+(?:,\d+)?|\d+(?:[.,]\d+)?)"
    r"\s?(?:%|procent(?:punten|punt)?(?!\w)|pct\b)",
    re.IGNORECASE,
)


# A bare amount in a table cell: Dutch notation with cents ("1.877,61", "12,45") or grouped
# thousands ("2.450"); not followed by a unit that says it is something else.
_BARE_AMOUNT = re.compile(
    r"(?<![\w.,/-])(\d{1,3}(?:\.\d{3})*,\d{2}|\d{1,3}(?:\.\d{3})+)"
    r"(?![\w.,/%-]|[ \t]?(?:procent|pct|uur|uren|dag|dagen|jaar|punt|km))"
)
_ROW_WORD = re.compile(r"[^\W\d_]{2,}")
_MAX_ROW_WORDS = 4
_CAPTION_LINES = 3
_MONEY_MARK = re.compile(r"€|\bEUR\b|\beuro", re.IGNORECASE)
_MONEY_WORD = re.compile(r"salaris|loon|lonen|bedrag|vergoeding|toeslag", re.IGNORECASE)
_NOT_MONEY = re.compile(r"\buren\b|arbeidsduur|werktijd|\bpunten\b|percentage", re.IGNORECASE)


def _money_signal(context: str) -> bool | None:
    """Whether a table caption says its numbers are euros (None: it does not say)."""
    if _MONEY_MARK.search(context):
        return True
    if _NOT_MONEY.search(context):
        return False
    return True if _MONEY_WORD.search(context) else None


def _table_amounts(text: str, heading: str) -> Iterator[tuple[int, str, float]]:
    """Bare amounts in table rows whose caption (or else the heading) says they are money.

    A row is a line with a bare amount and at most four other words ("0 fj   1.877,61");
    its caption is up to three non-blank lines before the rows (a column header included).
    """
    if not _BARE_AMOUNT.search(text):
        return
    caption: list[str] = []
    money: bool | None = None
    in_rows = False
    position = 0
    for line in text.splitlines(keepends=True):
        cells = list(_BARE_AMOUNT.finditer(line))
        rest = _BARE_AMOUNT.sub(" ", line)
        if cells and len(_ROW_WORD.findall(rest)) <= _MAX_ROW_WORDS:
            if not in_rows:
                said = _money_signal(" ".join(caption))
                money = said if said is not None else (money or _money_signal(heading))
                in_rows, caption = True, []
            if money:
                for cell in cells:
                    yield position + cell.start(1), cell[1], dutch_number(cell[1])
        elif line.strip():
            caption = [*caption, line][-_CAPTION_LINES:]
            in_rows = False
        position += len(line)


def find_amounts(text: str, heading: str = "") -> list[dict[str, Any]]:
    """Money amounts in euro: {"value", "currency", "text"}, in order of appearance.

    Besides amounts written with a currency, bare amounts in a table whose caption or heading
    says they are euros or wages (see `_table_amounts`).
    """
    found = []
    covered: list[tuple[int, int]] = []
    for m in _AMOUNT.finditer(text):
        number, factor_word = (m[1], m[2]) if m[1] else (m[3], m[4])
        factor = _FACTORS[factor_word.rstrip(".").lower()] if factor_word else 1
        value = dutch_number(number) * factor
        written = m.group().strip()
        covered.append(m.span())
        found.append((m.start(), written, {"value": value, "currency": "EUR", "text": written}))
    for start, written, value in _table_amounts(text, heading):
        if not any(low <= start < high for low, high in covered):
            found.append((start, written, {"value": value, "currency": "EUR", "text": written}))
    return _unique(found)


def find_percentages(text: str) -> list[dict[str, Any]]:
    """Percentages: {"value", "text"}, in order of appearance."""
    return _unique(
        (m.start(), m.group(), {"value": dutch_number(m[1]), "text": m.group()})
        for m in _PERCENT.finditer(text)
    )


# --- references ------------------------------------------------------------------------------

_PART = (
    r"(?:\s*,?\s*(?:lid|leden)\s+\d{1,2}(?:\s*(?:,|en|of|t/m|tot\s+en\s+met)\s*\d{1,2}(?!\d))*)?"
    r"(?:\s*,?\s*(?:sub|onder)\s+[a-z0-9]{1,3}\b)?"
)
_LIST_SEPARATOR = r"\s*(?:,|en|of|t/m|tot\s+en\s+met|-|–)\s*"
_REFERENCE = _starting_with(
    "aA",
    rf"\b(?:artikelen|artikel|art\.?)\s*({REFERENCE_NUMBER}{_PART}"
    rf"(?:{_LIST_SEPARATOR}{REFERENCE_NUMBER}{_PART})*)",
    re.IGNORECASE,
)
_LISTED = re.compile(rf"(?:^|{_LIST_SEPARATOR})({REFERENCE_NUMBER}){_PART}", re.IGNORECASE)
# A dotted number without "artikel" after a phrase that points at a provision:
# "als bedoeld in 4.1", "genoemd in 6.2 lid 1", "zie 4.3".
_BARE_REFERENCE = _starting_with(
    "bgvoazBGVOAZ",
    r"\b(?:(?:bedoeld|genoemd|vermeld|bepaald|omschreven|opgenomen|geregeld|beschreven)\s+in"
    rf"|zie(?:\s+ook)?)\s+({BARE_NUMBER}){_PART}(?![\d,])",
    re.IGNORECASE,
)
_ANNEX_REFERENCE = _starting_with("bB", rf"\b(?i:bijlage)\s+({ANNEX_NUMBER})")
_STATUTE_AFTER = re.compile(
    r"[ \t]*,?\s*(?:(?:van|uit)\s+(?:de|het)\s+)?"
    r"(?:BW\b|Burgerlijk\s+Wetboek|\w*[Ww]et(?:boek)?\b|Besluit\b|AOW\b|WW\b|ZW\b|WIA\b|WAO\b)"
)
_MAX_RANGE = 50


def _listed_articles(numbers: str) -> list[str]:
    """Article numbers in "3 en 4", "3, 4 lid 2 en 5", "3 t/m 6" (ranges expanded)."""
    articles: list[str] = []
    for m in _LISTED.finditer(numbers):
        current = m[1]
        is_range = re.match(r"\s*(?:t/m|tot\s+en\s+met|-|–)", m.group(), re.IGNORECASE)
        if is_range and articles and articles[-1].isdigit() and current.isdigit():
            low, high = int(articles[-1]), int(current)
            if 0 < high - low <= _MAX_RANGE:
                articles.extend(str(n) for n in range(low + 1, high))
        articles.append(current)
    return articles


def own_article(heading: str) -> str:
    """The article key of a heading ("Hoofdstuk 2 > Artikel 5a Loon" -> "5a"), or ""."""
    return article_of_heading(heading) or ""


def find_references(text: str, own: str = "") -> list[dict[str, str]]:
    """References to articles and annexes of this document: {"article", "text"}, in order.

    "article" is the article number as written ("5a", "4.1") or "bijlage 1" for an annex.
    """
    heading_starts = {h.start for h in find_headings(text)}
    found: list[tuple[int, str, dict[str, str]]] = []

    def add(start: int, article: str, phrase: str) -> None:
        line_start = max(text.rfind(c, 0, start) for c in "\n\r\f") + 1
        is_heading = line_start in heading_starts and not text[line_start:start].strip()
        if not is_heading and article.casefold() != own.casefold():
            found.append((start, article.casefold(), {"article": article, "text": phrase}))

    for m in _REFERENCE.finditer(text):
        if not _STATUTE_AFTER.match(text, m.end()):
            for article in _listed_articles(m[1]):
                add(m.start(), article, " ".join(m.group().split()))
    for m in _BARE_REFERENCE.finditer(text):
        add(m.start(1), m[1], " ".join(text[m.start(1) : m.end()].split()))
    for m in _ANNEX_REFERENCE.finditer(text):
        add(m.start(), f"bijlage {m[1].lower()}", " ".join(m.group().split()))
    return _unique(found)


# --- defined terms ---------------------------------------------------------------------------

_DEFINITIONS_CONTEXT = _starting_with(
    "vwdbVWDB",
    r"verstaan\s+onder|wordt\s+verstaan|definitie|begrippen|begripsbepaling",
    re.IGNORECASE,
)
_TERM = r"[^\W\d_][\w\-’']*(?:[ \t]+[\w\-’']+){0,4}?"
_LIST_TERM = re.compile(
    rf"(?m)^[ \t]*(?:[a-z]{{1,2}}|\d{{1,2}}(?:\.\d{{1,2}})?)[.)][ \t]+(?:[-–•][ \t]*)?"
    rf"({_TERM})[ \t]*:"
)
_BULLET_TERM = re.compile(rf"(?m)^[ \t]*[-–•][ \t]+({_TERM})[ \t]*:")
# Two or more consecutive lines "Werkgever: ...", "Pedagogisch medewerker: ..." (no marker).
_TERM_LINE = r"[ \t]*[A-ZÀ-Ý][\w\-’']*(?:[ \t]+[\w\-’']+){0,3}[ \t]*:[ \t]+\S[^\n]*"
_LINE_TERMS = re.compile(rf"(?m)^(?:{_TERM_LINE}\n)+{_TERM_LINE}$")
_LINE_TERM = re.compile(r"(?m)^[ \t]*([^:\n]+?)[ \t]*:")
_QUOTE_OPEN = "\"“„'‘«"
_QUOTE_CLOSE = "\"”'’»"
_ONDER_VERSTAAN = _starting_with(
    "oO",
    rf"\bonder\s+[{_QUOTE_OPEN}]?({_TERM})[{_QUOTE_CLOSE}]?\s+(?:wordt|worden)\s+"
    r"(?:(?:in|bij)\s+(?:deze|dit|de|het)\s+[\w-]+\s+)?(?:mede\s+)?verstaan",
    re.IGNORECASE,
)
_WORDT_ONDER = _starting_with(
    "wW",
    r"\b(?:wordt|worden)\s+(?:(?:in|bij)\s+(?:deze|dit|de|het)\s+[\w-]+\s+)?onder\s+"
    rf"[{_QUOTE_OPEN}]?({_TERM})[{_QUOTE_CLOSE}]?\s+(?:mede\s+)?verstaan",
    re.IGNORECASE,
)
_QUOTED = _starting_with(
    "\"“„«‘'",
    r"(?:(?<=[\s(:])|^)(?:[\"“„«]([^\W\d_][^\"“”„«»\n.,;:!?]{0,58}?)[\"”»]"
    r"|[‘']([^\W\d_][\w\- ]{0,58}?)[’'](?![\w]))",
)
_ARTICLE_WORD = re.compile(r"^(?:de|het|een)\s+", re.IGNORECASE)
_MAX_TERM_WORDS = 5


def _clean_term(raw: str) -> str:
    return _ARTICLE_WORD.sub("", " ".join(raw.split())).strip(_QUOTE_OPEN + _QUOTE_CLOSE)


def find_defined_terms(text: str, heading: str = "") -> list[str]:
    """Terms the text defines, in order of appearance (see the module docstring)."""
    found: list[tuple[int, str]] = []
    patterns = [_ONDER_VERSTAAN, _WORDT_ONDER, _QUOTED]
    if _DEFINITIONS_CONTEXT.search(text) or _DEFINITIONS_CONTEXT.search(heading):
        patterns += [_LIST_TERM, _BULLET_TERM]
    for pattern in patterns:
        for m in pattern.finditer(text):
            raw = next(group for group in m.groups() if group)
            found.append((m.start(), _clean_term(raw)))
    if len(patterns) > 3:
        for block in _LINE_TERMS.finditer(text):
            found += [
                (block.start() + m.start(), _clean_term(m[1]))
                for m in _LINE_TERM.finditer(block.group())
            ]
    return _unique(
        (pos, term.casefold(), term)
        for pos, term in found
        if term and len(term.split()) <= _MAX_TERM_WORDS
    )


# --- parties ---------------------------------------------------------------------------------

# (canonical name, pattern); longer names first so "CNV Vakmensen" wins over "CNV".
_KNOWN_PARTIES: tuple[tuple[str, str], ...] = (
    ("FNV Bondgenoten", r"FNV Bondgenoten"),
    ("FNV Metaal", r"FNV Metaal"),
    ("FNV Handel", r"FNV Handel"),
    ("FNV Havens", r"FNV Havens"),
    ("FNV Zorg & Welzijn", r"FNV Zorg (?:&|en) Welzijn"),
    ("FNV Publieke Zaak", r"FNV Publieke Zaak"),
    ("FNV Bouwen & Wonen", r"FNV Bouwen (?:&|en) Wonen"),
    ("FNV Schoonmaak", r"FNV Schoonmaak"),
    ("FNV", r"FNV|Federatie Nederlandse Vakbeweging"),
    ("CNV Vakmensen", r"CNV Vakmensen"),
    ("CNV Connectief", r"CNV Connectief"),
    ("CNV Publieke Zaak", r"CNV Publieke Zaak"),
    ("CNV", r"CNV|Christelijk Nationaal Vakverbond"),
    ("De Unie", r"[Vv]akbond De Unie|[Dd]e Unie"),
    ("VCP", r"VCP|Vakcentrale voor Professionals"),
    ("AVV", r"Alternatief [Vv]oor Vakbond"),
    ("NU'91", r"NU'91|NU’91"),
    ("FBZ", r"FBZ"),
    ("Ambtenarencentrum", r"Ambtenarencentrum"),
    ("LBV", r"LBV"),
    ("AWVN", r"AWVN|Algemene [Ww]erkgeversvereniging VNO-NCW"),
    ("Koninklijke Metaalunie", r"(?:Koninklijke )?Metaalunie"),
    ("FME", r"FME-CWM|FME"),
    ("VNO-NCW", r"VNO-NCW"),
    ("MKB-Nederland", r"MKB-Nederland"),
    ("Bouwend Nederland", r"Bouwend Nederland"),
    ("Techniek Nederland", r"Techniek Nederland"),
    ("Koninklijke Horeca Nederland", r"(?:Koninklijke )?Horeca Nederland|KHN"),
    ("Detailhandel Nederland", r"Detailhandel Nederland"),
    ("INretail", r"INretail"),
    ("Transport en Logistiek Nederland", r"Transport en Logistiek Nederland|TLN"),
    ("LTO Nederland", r"LTO Nederland"),
    ("ABU", r"ABU"),
    ("NBBU", r"NBBU"),
    ("ActiZ", r"ActiZ"),
    ("NVZ", r"NVZ|Nederlandse Vereniging van Ziekenhuizen"),
    ("NFU", r"NFU"),
    ("VGN", r"VGN"),
    ("Sociaal Werk Nederland", r"Sociaal Werk Nederland"),
    ("VNG", r"VNG|Vereniging van Nederlandse Gemeenten"),
    ("BOVAG", r"BOVAG|Bovag"),
)
_PARTY_ALTERNATIVES = "|".join(
    f"(?P<p{index}>{pattern})" for index, (_, pattern) in enumerate(_KNOWN_PARTIES)
)
_PARTY = _starting_with("A-Zd", rf"(?<![\w])(?:{_PARTY_ALTERNATIVES})(?![\w’'])")
# "AVV" is also "algemeen verbindend verklaring": the union only inside a list of unions.
_AVV = _starting_with("A", r"(?<![\w])AVV(?![\w-])")
_AVV_DECLARED = re.compile(r"verbind", re.IGNORECASE)
_PARTIES_CONTEXT = _starting_with("pPoO", r"\bpartij(?:en)?\b|ondergetekenden", re.IGNORECASE)
_ESTABLISHED = re.compile(
    r"(?m)^[ \t]*(?:\d{1,2}[.)]|[a-z][.)]|[-•])?[ \t]*"
    r"((?:[Dd]e\s+)?[A-Z][^\n,;:()]{1,80}?)[ \t]*(?:\([^)\n]*\)[ \t]*)?,?\s+"
    r"(?:statutair\s+)?(?:gevestigd|zetelend|kantoorhoudende?)\s+(?:te|in)\s+[A-Z]"
)
_AVV_WINDOW = 40
_SENTENCE_BREAK = re.compile(r"[.;!?\n](?:\s|$)")
_MAX_PARTY_WORDS = 10


def _avv_is_union(text: str, start: int, end: int) -> bool:
    """Whether "AVV" at text[start:end] names the union: see the module docstring."""
    before = text[max(0, start - _AVV_WINDOW) : start]
    after = text[end : end + _AVV_WINDOW]
    sentence = _SENTENCE_BREAK.split(before)[-1] + "AVV" + _SENTENCE_BREAK.split(after)[0]
    return bool(_PARTY.search(sentence)) and not _AVV_DECLARED.search(sentence)


def find_parties(text: str) -> list[str]:
    """Parties to the agreement named in `text`, in order of appearance."""
    found: list[tuple[int, str]] = [
        (m.start(), _KNOWN_PARTIES[int(str(m.lastgroup)[1:])][0]) for m in _PARTY.finditer(text)
    ]
    for m in _AVV.finditer(text):
        if _avv_is_union(text, m.start(), m.end()):
            found.append((m.start(), "AVV"))
    if _PARTIES_CONTEXT.search(text):
        for m in _ESTABLISHED.finditer(text):
            name = " ".join(m[1].split())
            known = _PARTY.search(name) or _AVV.search(name)
            if not known and len(name.split()) <= _MAX_PARTY_WORDS:
                found.append((m.start(1), name))
    return _unique((pos, name.casefold(), name) for pos, name in found)


# --- the chunk and the stage -----------------------------------------------------------------


def section_title(chunk: Chunk) -> str:
    """The chunk's heading, else the first heading line in its text, else ""."""
    if chunk.heading:
        return chunk.heading
    headings = find_headings(chunk.text)
    return headings[0].title if headings else ""


def analyze_chunk(chunk: Chunk) -> dict[str, Any]:
    """The JSON form of one chunk's analysis (see schema.py)."""
    title = section_title(chunk)
    return {
        "section_title": title,
        "defined_terms": find_defined_terms(chunk.text, title),
        "dates": find_dates(chunk.text),
        "amounts": find_amounts(chunk.text, title),
        "percentages": find_percentages(chunk.text),
        "references": find_references(chunk.text, own_article(title)),
        "parties": find_parties(chunk.text),
    }


class AnalyzeStage:
    """Pipeline stage "analyze": one validated ChunkAnalysis per chunk, in chunk order."""

    name = "analyze"

    def run(self, work: Work) -> Work:
        analyses = self.analyze(work, work.chunks)
        logger.debug("analyzed %s: %d chunks", work.source.path, len(analyses))
        return replace(work, analyses=analyses)

    def analyze(self, work: Work, chunks: Iterable[Chunk]) -> tuple[ChunkAnalysis, ...]:
        """The analyses of some of a document's chunks (a window of a long one, or all)."""
        return tuple(
            parse_analysis(chunk.id, json.loads(json.dumps(analyze_chunk(chunk))))
            for chunk in chunks
        )

    def notes(self) -> tuple[str, ...]:
        """Warnings about the chunks analysed so far: the embedded analyzer has none."""
        return ()
