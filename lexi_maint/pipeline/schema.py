"""The analysis schema, defined once: what the analyzer (embedded or LLM) says about a chunk.

JSON form of one chunk's analysis::

    {
      "section_title": "Artikel 5 Loon",
      "defined_terms": ["werknemer", "werkgever"],
      "dates": ["2024-01-01"],
      "amounts": [{"value": 2450.0, "currency": "EUR", "text": "€ 2.450,00"}],
      "percentages": [{"value": 3.5, "text": "3,5%"}],
      "references": [{"article": "12", "text": "artikel 12"}],
      "parties": ["FNV", "CNV Vakmensen"]
    }

`parse_analysis` validates such a mapping and returns a `ChunkAnalysis`, or raises
`SchemaError` listing the problems with their JSON paths (the first `MAX_PROBLEMS`).

Bounds no answer can pass (a prompt-injected answer once carried 20,000 terms per chunk):
each list keeps its first `MAX_ITEMS` items and each string its first `MAX_TEXT`
characters; what was cut is said in `ChunkAnalysis.notes`, which the stage turns into a
warning in the ledger.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lexi_maint.errors import DocumentError, ErrorClass

MAX_ITEMS = 200  # per list of one chunk's analysis
MAX_TEXT = 500  # characters per string
MAX_PROBLEMS = 20  # listed in a SchemaError's message

FIELDS = (
    "section_title",
    "defined_terms",
    "dates",
    "amounts",
    "percentages",
    "references",
    "parties",
)


@dataclass(frozen=True)
class Amount:
    value: float
    currency: str
    text: str


@dataclass(frozen=True)
class Percentage:
    value: float
    text: str


@dataclass(frozen=True)
class Reference:
    article: str
    text: str


@dataclass(frozen=True)
class ChunkAnalysis:
    chunk_id: str
    section_title: str
    defined_terms: tuple[str, ...]
    dates: tuple[str, ...]  # ISO 8601 dates (YYYY-MM-DD)
    amounts: tuple[Amount, ...]
    percentages: tuple[Percentage, ...]
    references: tuple[Reference, ...]
    parties: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what the bounds cut off (not part of the analysis)

    def to_json(self) -> dict[str, Any]:
        return {
            "section_title": self.section_title,
            "defined_terms": list(self.defined_terms),
            "dates": list(self.dates),
            "amounts": [
                {"value": a.value, "currency": a.currency, "text": a.text} for a in self.amounts
            ],
            "percentages": [{"value": p.value, "text": p.text} for p in self.percentages],
            "references": [{"article": r.article, "text": r.text} for r in self.references],
            "parties": list(self.parties),
        }


class SchemaError(DocumentError):
    """An analysis does not follow the schema; `problems` has one entry per violation."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "; ".join(problems[:MAX_PROBLEMS])
        more = f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        super().__init__(ErrorClass.SCHEMA, shown + more)


class _Checker:
    """Collects every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []

    def text(self, value: object, path: str) -> str:
        if isinstance(value, str):
            if len(value) > MAX_TEXT:
                self.notes.append(f"{path}: {len(value)} characters, kept the first {MAX_TEXT}")
                return value[:MAX_TEXT]
            return value
        self.problems.append(f"{path}: expected a string, got {type(value).__name__}")
        return ""

    def number(self, value: object, path: str) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        self.problems.append(f"{path}: expected a number, got {type(value).__name__}")
        return 0.0

    def items(self, data: Mapping[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if isinstance(value, list):
            if len(value) > MAX_ITEMS:
                self.notes.append(f"$.{key}: {len(value)} items, kept the first {MAX_ITEMS}")
                return value[:MAX_ITEMS]
            return value
        self.problems.append(f"$.{key}: expected a list, got {type(value).__name__}")
        return []

    def obj(self, value: object, path: str) -> Mapping[str, Any]:
        if isinstance(value, Mapping):
            return value
        self.problems.append(f"{path}: expected an object, got {type(value).__name__}")
        return {}

    def iso_date(self, value: object, path: str) -> str:
        text = self.text(value, path)
        try:
            _dt.date.fromisoformat(text)
        except ValueError:
            if text:
                self.problems.append(f"{path}: {text!r} is not an ISO date (YYYY-MM-DD)")
        return text


def parse_analysis(chunk_id: str, data: object) -> ChunkAnalysis:
    """Validate one chunk's analysis (already decoded from JSON) against the schema."""
    check = _Checker()
    root = check.obj(data, "$")
    unknown = sorted(set(root) - set(FIELDS))
    check.problems.extend(f"$.{key}: unknown field" for key in unknown)
    missing = [key for key in FIELDS if key not in root]
    check.problems.extend(f"$.{key}: missing" for key in missing)
    if missing or not root:
        raise SchemaError(check.problems)
    result = ChunkAnalysis(
        chunk_id=chunk_id,
        section_title=check.text(root["section_title"], "$.section_title"),
        defined_terms=tuple(
            check.text(v, f"$.defined_terms[{i}]")
            for i, v in enumerate(check.items(root, "defined_terms"))
        ),
        dates=tuple(
            check.iso_date(v, f"$.dates[{i}]") for i, v in enumerate(check.items(root, "dates"))
        ),
        amounts=tuple(_amount(check, v, i) for i, v in enumerate(check.items(root, "amounts"))),
        percentages=tuple(
            _percentage(check, v, i) for i, v in enumerate(check.items(root, "percentages"))
        ),
        references=tuple(
            _reference(check, v, i) for i, v in enumerate(check.items(root, "references"))
        ),
        parties=tuple(
            check.text(v, f"$.parties[{i}]") for i, v in enumerate(check.items(root, "parties"))
        ),
        notes=tuple(check.notes),
    )
    if check.problems:
        raise SchemaError(check.problems)
    return result


def _amount(check: _Checker, value: object, i: int) -> Amount:
    item = check.obj(value, f"$.amounts[{i}]")
    return Amount(
        value=check.number(item.get("value"), f"$.amounts[{i}].value"),
        currency=check.text(item.get("currency"), f"$.amounts[{i}].currency"),
        text=check.text(item.get("text"), f"$.amounts[{i}].text"),
    )


def _percentage(check: _Checker, value: object, i: int) -> Percentage:
    item = check.obj(value, f"$.percentages[{i}]")
    return Percentage(
        value=check.number(item.get("value"), f"$.percentages[{i}].value"),
        text=check.text(item.get("text"), f"$.percentages[{i}].text"),
    )


def _reference(check: _Checker, value: object, i: int) -> Reference:
    item = check.obj(value, f"$.references[{i}]")
    return Reference(
        article=check.text(item.get("article"), f"$.references[{i}].article"),
        text=check.text(item.get("text"), f"$.references[{i}].text"),
    )
