"""The gold set: fictional collective agreements written for this project, with their answers.

Each `<name>.txt` has a sidecar `<name>.json` saying what a reader finds in it:

    formats      the formats the document exercises (prose, for the reader of a report)
    articles     every article and annex heading: {"key": "3.1", "line": <the line as written>}
    terms        defined terms (compared case-folded)
    dates        ISO dates written in the text
    amounts      money amounts in euro (values)
    percentages  percentages (values)
    references   {"text": <unique text starting at the reference>, "to": <key of the target>}

`load_gold()` reads and checks them: a heading line or a reference text that is not in the
document, or not unique in it, is an error in the gold set, not a miss of the analyzer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GOLD_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoldHeading:
    key: str
    line: str
    start: int  # where the line starts in the text


@dataclass(frozen=True)
class GoldReference:
    text: str
    to: str
    start: int  # where the reference starts in the text


@dataclass(frozen=True)
class GoldDocument:
    name: str
    path: Path
    text: str
    formats: tuple[str, ...]
    headings: tuple[GoldHeading, ...]
    terms: frozenset[str]
    dates: frozenset[str]
    amounts: frozenset[float]
    percentages: frozenset[float]
    references: tuple[GoldReference, ...]


def _unique_position(text: str, needle: str, what: str, name: str) -> int:
    count = text.count(needle)
    if count != 1:
        raise ValueError(f"gold {name}: {what} {needle!r} occurs {count} times in the text")
    return text.index(needle)


def _line_start(text: str, line: str, name: str) -> int:
    starts = [i for i in range(len(text)) if text.startswith(line + "\n", i)]
    starts = [i for i in starts if i == 0 or text[i - 1] == "\n"]
    if len(starts) != 1:
        raise ValueError(f"gold {name}: heading line {line!r} occurs {len(starts)} times")
    return starts[0]


def load_document(sidecar: Path) -> GoldDocument:
    path = sidecar.with_suffix(".txt")
    text = path.read_text(encoding="utf-8")
    data = json.loads(sidecar.read_text(encoding="utf-8"))
    name = path.stem
    return GoldDocument(
        name=name,
        path=path,
        text=text,
        formats=tuple(data["formats"]),
        headings=tuple(
            GoldHeading(h["key"], h["line"], _line_start(text, h["line"], name))
            for h in data["articles"]
        ),
        terms=frozenset(t.casefold() for t in data["terms"]),
        dates=frozenset(data["dates"]),
        amounts=frozenset(round(float(a), 2) for a in data["amounts"]),
        percentages=frozenset(round(float(p), 2) for p in data["percentages"]),
        references=tuple(
            GoldReference(r["text"], r["to"], _unique_position(text, r["text"], "reference", name))
            for r in data["references"]
        ),
    )


def load_gold(directory: Path = GOLD_DIR) -> list[GoldDocument]:
    """Every gold document in `directory`, by name."""
    return [load_document(sidecar) for sidecar in sorted(directory.glob("*.json"))]
