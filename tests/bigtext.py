"""Make very long text files at test time (issue 10: a 199 MiB TXT of one line)."""

from __future__ import annotations

from pathlib import Path

MIB = 2**20
SENTENCE = (
    "De werknemer ontvangt per 1 januari 2025 een loon van EUR 2.450,00 en 3,5% toeslag "
    "volgens artikel 5 lid 2. "
)


def make_one_line_txt(path: Path, size: int = 199 * MIB, unit: str = SENTENCE) -> Path:
    """A text file of exactly `size` bytes and no line break, written a MiB at a time: `unit`
    repeated (by default a CAO-like sentence with a date, an amount, a percentage and a
    reference; "x" gives one word without any boundary, which the analysis reads fastest)."""
    block = (unit * (MIB // len(unit) + 1)).encode()[:MIB]
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(block)
        handle.write(block[: size % MIB])
    return path
