"""The pipeline's settings: how documents are read (`[job.parse]`) and cut (`[job.chunk]`).

Checked when made (`__post_init__` raises ValueError with what to write instead); the
job's TOML section is read into them by `lexi_maint.config`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from lexi_maint.units import MiB


@dataclass(frozen=True)
class ParseSettings:
    """How the parse stage reads files."""

    fallback_encoding: str = "cp1252"
    max_bytes: int = 200 * MiB
    page_seconds: float = 10.0  # CPU seconds one PDF page may take (0: no limit)

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.fallback_encoding)
        except LookupError:
            raise ValueError(
                f"fallback_encoding {self.fallback_encoding!r} is not a known codec; "
                "use a name Python knows, such as 'cp1252' or 'latin-1'"
            ) from None
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive number of bytes, not {self.max_bytes}")


@dataclass(frozen=True)
class ChunkSettings:
    """Size limits of a chunk, in characters."""

    min_chars: int = 200
    max_chars: int = 4000

    def __post_init__(self) -> None:
        if self.max_chars <= 0:
            raise ValueError(
                f"max_chars must be a positive number of characters, got {self.max_chars}; "
                "use e.g. max_chars=4000"
            )
        if not 0 < self.min_chars < self.max_chars:
            raise ValueError(
                f"min_chars must be greater than 0 and smaller than max_chars "
                f"({self.max_chars}), got {self.min_chars}; use e.g. min_chars=200"
            )
