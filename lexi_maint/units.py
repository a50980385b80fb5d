"""Parsing sizes and durations the way systemd writes them ("4G", "512M", "6h", "90s")."""

from __future__ import annotations

import re

MiB = 2**20  # bytes

_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$")
_SIZE_FACTORS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(min|ms|sec|s|m|h|d)?\s*")
_DURATION_FACTORS = {
    None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
}  # fmt: skip


def parse_size(text: str | int) -> int:
    """Bytes from 4294967296, "4G", "512M", "1.5G" (binary units, as systemd uses)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a size cannot be negative")
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 512M, 4G or a number of bytes")
    number, unit = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.upper()])


def parse_duration(text: str | int | float) -> float:
    """Seconds from 90, "90s", "30min", "6h", "1h 30min"."""
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    position, total, stripped = 0, 0.0, text.strip()
    if not stripped:
        raise ValueError("empty duration")
    while position < len(stripped):
        match = _DURATION.match(stripped, position)
        if not match or match.end() == position:
            raise ValueError(f"{text!r} is not a duration; write e.g. 90s, 30min or 6h")
        number, unit = match.groups()
        total += float(number) * _DURATION_FACTORS[unit]
        position = match.end()
    return total


def format_size(value: int) -> str:
    for unit in ("T", "G", "M", "K"):
        factor = _SIZE_FACTORS[unit]
        if value >= factor and value % factor == 0:
            return f"{value // factor}{unit}"
    return str(value)


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """ "1 job", "2 jobs", "0 problems" (pass `plural_form` for irregular nouns)."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"
