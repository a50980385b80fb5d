"""Article numbering, defined once: heading lines, article keys and references to them.

Pure logic, no I/O. The chunker cuts at the heading lines found here, the analyzer skips them
when it looks for references, and the graph model files every chunk under the keys of the
articles it holds and resolves references with `resolve_reference`.

Heading lines (`parse_heading` for one line, `find_headings` for a text): a whole line of at
most 200 characters, not a table-of-contents line (dot leaders, or a tab before the page
number), that is one of

    chapter  "Hoofdstuk"/"HOOFDSTUK"/"Bijlage"/"BIJLAGE" or "§" and a number:
             "Hoofdstuk 3 Arbeidsduur", "HOOFDSTUK IV – VAKANTIE", "Bijlage 1 Loontabellen",
             "§2 | SALARIS", "§ 3 Functies";
    article  "Artikel"/"ARTIKEL"/"Art."/"ART." and a number: "Artikel 5 Loon", "ARTIKEL 5A",
             "Art. 12.3b: Reiskosten", "Artikel 3.1 | Vaststellen van functies";
    article  a dotted number without the word, "4.1 Normale arbeidsduur", only inside a
             chapter numbered 4 ("HOOFDSTUK 4 ARBEIDSDUUR", "§4 ...") that has had no
             "Artikel" heading yet, and only when the rest reads as a title: it starts with a
             capital, has at most 8 words and no colon, does not end in ".", ",", ";", ":"
             or a function word ("de", "van", "wordt", ...), and the next line does not go
             on in lower case. So "4.1 De werknemer werkt 38 uur.", a wrapped "4.1 Het loon
             wordt betaald op de" and "1. Werknemer: ..." stay clauses.

A number is "5", "5a", "3.2", "12.3b", a Roman numeral or one capital letter. After the number
comes nothing, a separator (".", ":", "|", a dash) and any title, or a title that starts with a
capital, a digit, a quote or a bracket: "Artikel 5 lid 2 is van toepassing" is running text.

Keys (`HeadingLine.key`, `article_of_heading`): the article number in lower case ("5a",
"12.3b"); an annex is "bijlage 1"; other chapters have no key. Several CAOs restart article
numbers per chapter: the first article with a key is the one a reference resolves to.

References (`resolve_reference`): "artikel 5", "Art. 5 lid 2", "5.2", "bijlage 1" are read as
keys; a key no heading has falls back to its main number ("5.2" and "5 lid 2" -> "5").
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterator
from enum import Enum
from typing import NamedTuple

MAX_HEADING_CHARS = 200
HEADING_SEPARATOR = " > "  # the chunker's "Hoofdstuk 3 Arbeidsduur > Artikel 7 Werktijden"
MAX_BARE_TITLE_WORDS = 8

# A number in a heading: "5", "5a", "3.2", "12.3b", "IV", "A".
HEADING_NUMBER = r"(?:\d{1,3}[a-zA-Z]?(?:\.\d{1,3}[a-zA-Z]?)*|[IVXLC]{1,6}|[A-Z])"
# A number in a reference: "5", "5a", "12.3b"; not "7:610" (a book of a code, "artikel 7:610
# BW") nor "5,2".
REFERENCE_NUMBER = r"\d{1,3}[a-z]?(?:\.\d{1,3}[a-z]?)*(?!\d|:\d|,\d)"
# An annex number in running text: "bijlage 1", "bijlage 2a", "bijlage IV", "bijlage B" (Roman
# numerals and letters in upper case only: "de bijlage en" is no reference).
ANNEX_NUMBER = r"(?:\d{1,2}[a-z]?|[IVXLC]{1,6}|[A-Z])(?!\w)"
# A dotted number that may head an article without the word "Artikel": "4.1", "4.12a".
BARE_NUMBER = r"\d{1,2}\.\d{1,2}[a-z]?(?![\d.]\d)"

# Nothing, a separator (".", ":", "|", a dash) and any title, or a title that starts with a
# capital, a digit, a quote or a bracket.
_TITLE = r"(?:[ \t]*[.:|\-–—](?:[ \t]+\S.*)?|[ \t]+[\"'(\[A-ZÀ-Ý0-9].*)?"
_CHAPTER_WORD = r"(?:Hoofdstuk|HOOFDSTUK|Bijlage|BIJLAGE)"
_ANNEX_WORD = re.compile(r"Bijlage|BIJLAGE")
_ARTICLE_WORD = r"(?:Artikel|ARTIKEL|Art\.|ART\.)"
_CHAPTER_RE = re.compile(
    rf"(?:{_CHAPTER_WORD}[ \t]+|§[ \t]*)(?P<number>{HEADING_NUMBER})\b{_TITLE}"
)
_ARTICLE_RE = re.compile(rf"{_ARTICLE_WORD}[ \t]*(?P<number>{HEADING_NUMBER})\b{_TITLE}")
_BARE_RE = re.compile(
    r"(?P<number>(?P<chapter>\d{1,2})\.\d{1,2}[a-z]?)\.?[ \t]+"
    r"(?P<title>[A-ZÀ-Ý][^:\n\r\f]*[^.,;:\s])"
)
# A title does not end in one of these: "4.1 Het loon wordt betaald op de" is a wrapped clause.
_FUNCTION_WORDS = frozenset({
    "de", "het", "een", "van", "in", "op", "te", "en", "of", "voor", "met", "aan", "bij", "die",
    "dat", "door", "om", "tot", "over", "naar", "als", "is", "wordt", "zijn", "worden", "heeft",
    "hebben", "kan", "dan", "niet",
})  # fmt: skip
_CONTINUATION = re.compile(r"[ \t]*[a-zà-ÿ]{2}")  # "op de laatste ..."; not "a. Overwerk"
_TOC_RE = re.compile(r"(?:\.[ \t]?){4,}|…{2,}|\t[ \t]*\d{1,4}[ \t]*$")
# A line that may be a heading, after a line break ("\r\n" is one break) or at the start.
_CANDIDATE = rf"[ \t]*(?P<line>(?:{_CHAPTER_WORD}|{_ARTICLE_WORD}|§|\d{{1,2}}\.\d)[^\n\r\f]*)"
_FIRST_LINE_RE = re.compile(_CANDIDATE)
_LINE_RE = re.compile(rf"(?:[\n\f]|\r(?!\n)){_CANDIDATE}")

_REFERENCE_KEY = re.compile(
    rf"\s*(?:(?:artikelen|artikel|art\.?)\s*)?({REFERENCE_NUMBER})", re.IGNORECASE
)
# In a chunk heading, a letter glued to a word is not part of the number ("Artikel 7Werk").
_LETTER = r"(?:[a-zA-Z](?![a-zA-Z]))?"
_ARTICLE_KEY = re.compile(
    rf"(?:artikel|art\.?)\s*(\d{{1,3}}{_LETTER}(?:\.\d{{1,3}}{_LETTER})*)(?!\d|:\d)", re.IGNORECASE
)
_ANNEX_KEY = re.compile(r"\s*bijlage\s+(\d{1,2}[a-z]?|[ivxlc]{1,6}|[a-z])\b", re.IGNORECASE)


class Kind(Enum):
    CHAPTER = "chapter"
    ARTICLE = "article"


class Heading(NamedTuple):
    """What one heading line is: its kind, its text and the key it is addressed by.

    (Named tuples, not dataclasses: a document may have a quarter of a million headings.)
    """

    kind: Kind
    title: str  # whitespace collapsed: "Artikel 5 Loon"
    key: str  # "5", "3.1", "bijlage 1"; "" for a chapter
    number: str  # as written: "5", "4", "IV" ("" when none)


class HeadingLine(NamedTuple):
    """A heading line found in a text: text[start:end] is the line."""

    start: int
    end: int
    kind: Kind
    title: str
    key: str


def _collapsed(line: str) -> str:
    return " ".join(line.split())


def parse_heading(line: str) -> Heading | None:
    """Classify one line as a chapter or "Artikel" heading (bare numbers need a context)."""
    stripped = line.strip()
    if not stripped or len(stripped) > MAX_HEADING_CHARS or _TOC_RE.search(stripped):
        return None
    if match := _CHAPTER_RE.fullmatch(stripped):
        number = match["number"]
        key = f"bijlage {number.lower()}" if _ANNEX_WORD.match(stripped) else ""
        return Heading(Kind.CHAPTER, _collapsed(stripped), key, number)
    if match := _ARTICLE_RE.fullmatch(stripped):
        number = match["number"]
        return Heading(Kind.ARTICLE, _collapsed(stripped), number.lower(), number)
    return None


def parse_bare_heading(line: str, chapter: str, next_line: str = "") -> Heading | None:
    """A "4.1 Normale arbeidsduur" line as an article heading inside chapter `chapter` ("4").

    `next_line` is the text after the line: a wrapped clause ("4.1 Het loon wordt betaald op
    de" / "laatste werkdag") goes on in lower case or stops at a function word.
    """
    stripped = line.strip()
    match = _BARE_RE.fullmatch(stripped)
    if match is None or match["chapter"] != chapter or _TOC_RE.search(stripped):
        return None
    words = match["title"].split()
    if len(words) > MAX_BARE_TITLE_WORDS or len(stripped) > 80:
        return None
    if words[-1].lower() in _FUNCTION_WORDS or _CONTINUATION.match(next_line):
        return None
    return Heading(Kind.ARTICLE, _collapsed(stripped), match["number"].lower(), match["number"])


def _next_line(text: str, end: int) -> str:
    """The first non-blank line after position `end` (the end of a line)."""
    following = text[end : end + 200].lstrip()
    return following.split("\n", 1)[0]


def _candidates(text: str) -> Iterator[re.Match[str]]:
    first = _FIRST_LINE_RE.match(text)
    if first is not None:
        yield first
    yield from _LINE_RE.finditer(text)


def find_headings(text: str) -> list[HeadingLine]:
    """Every heading line in `text`, in order (see the module docstring for bare numbers)."""
    return scan_headings(text)[0]


def scan_headings(text: str, chapter: str = "") -> tuple[list[HeadingLine], str]:
    """`find_headings` for a text that goes on where another stopped: `chapter` is the
    number of the chapter whose bare-numbered articles ("4.1 Overwerk") may follow, as
    returned for the text before; returned for the text after this one."""
    found: list[HeadingLine] = []
    for match in _candidates(text):
        line = match["line"]
        if not line[0].isdigit():
            heading = parse_heading(line)
        elif chapter:
            heading = parse_bare_heading(line, chapter, _next_line(text, match.end("line")))
        else:
            continue
        if heading is None:
            continue
        if heading.kind is Kind.CHAPTER:
            chapter = heading.number if heading.number.isdigit() and not heading.key else ""
        elif heading.title[0].isalpha():  # an "Artikel" heading: its clauses are not articles
            chapter = ""
        start = match.start("line")
        found.append(
            HeadingLine(start, start + len(line.rstrip()), heading.kind, heading.title, heading.key)
        )
    return found, chapter


def article_of_heading(heading: str) -> str | None:
    """The key of the article a chunk heading names, if any.

    The chunker writes "Hoofdstuk 3 Beloning > Artikel 5a Loon" (-> "5a") and
    "HOOFDSTUK 4 ARBEIDSDUUR > 4.1 Normale arbeidsduur" (-> "4.1"); an annex heading
    "Bijlage 1 Loontabellen" gives "bijlage 1". "Artikel 7Werkingssfeer" still gives "7".
    """
    last = heading.rsplit(HEADING_SEPARATOR, 1)[-1].strip()
    if match := _ARTICLE_KEY.match(last):
        return match[1].lower()
    if HEADING_SEPARATOR in heading and (match := re.match(rf"({BARE_NUMBER})\s", last)):
        return match[1].lower()
    if match := _ANNEX_KEY.match(last):
        return f"bijlage {match[1].lower()}"
    return None


def reference_key(reference: str) -> str | None:
    """The key a reference names: "Art. 5a lid 2" -> "5a", "Bijlage I" -> "bijlage i"."""
    if match := _ANNEX_KEY.match(reference):
        return f"bijlage {match[1].lower()}"
    if match := _REFERENCE_KEY.match(reference):
        return match[1].lower()
    return None


def resolve_reference(reference: str, keys: Container[str]) -> str | None:
    """The key among `keys` a reference resolves to (falling back to the main number)."""
    key = reference_key(reference)
    if key is None:
        return None
    if key in keys:
        return key
    main = key.split(".", 1)[0]
    return main if main in keys else None
