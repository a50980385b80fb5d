"""No mypy ignore comment in the package, the tests or the benchmarks: mypy strict is only worth
what it is allowed to see, so a type it cannot check is fixed (a protocol, a narrowing
`assert isinstance`, a typed boundary for parsed JSON), never silenced."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("lexi_maint", "tests", "bench")
IGNORE = re.compile(r"#\s*type:\s*ignore\b")


def ignores(source: str) -> list[int]:
    """The lines with a mypy ignore comment (comments only: a string may name it)."""
    if not IGNORE.search(source):
        return []  # most files: no need to tokenize
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return [t.start[0] for t in tokens if t.type == tokenize.COMMENT and IGNORE.match(t.string)]


def python_files() -> list[Path]:
    return sorted(path for top in SCANNED for path in (REPO / top).rglob("*.py"))


def test_no_type_ignore_comments() -> None:
    found = [
        f"{path.relative_to(REPO)}:{line}"
        for path in python_files()
        for line in ignores(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "an ignore comment hides what mypy would check; type it instead"


def test_the_scan_finds_a_comment_and_not_a_string() -> None:
    comment = "# type" + ": ignore"  # split, so that grepping the tree finds none here either
    source = f'x = f()  {comment}[arg-type]\ny = "{comment}"\nz = 1  #type:ignore\n'
    assert ignores(source) == [1, 3]
    assert len(python_files()) > 100  # the scan sees the tree
