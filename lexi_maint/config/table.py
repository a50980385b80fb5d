"""Checked access to decoded TOML tables: typed getters that collect every problem.

Each configuration section is read through a `Table`, which records the dotted path of every
key it reads; keys nobody read are reported as unknown when the table closes. Sections owned
by other modules (e.g. `[llm]`, `[graph]`) are parsed by functions that take a `Table`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from lexi_maint.errors import ConfigProblem

T = TypeVar("T")


class Reader:
    """Owns the problem list and the file name/anchor shared by every table."""

    def __init__(self, file: str, anchor: Path) -> None:
        self.file = file
        self.anchor = anchor
        self.problems: list[ConfigProblem] = []

    @contextmanager
    def table(self, data: Mapping[str, Any], prefix: str) -> Iterator[Table]:
        table = Table(self, data, prefix)
        yield table
        table.report_unknown()


class Table:
    """Typed, checked access to one TOML table; remembers which keys were read."""

    def __init__(self, reader: Reader, data: Mapping[str, Any], prefix: str) -> None:
        self._reader = reader
        self._data = data
        self._prefix = prefix
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def problem(self, key: str, message: str) -> None:
        self._reader.problems.append(ConfigProblem(self._reader.file, self._key(key), message))

    def has(self, key: str) -> bool:
        return key in self._data

    def table_list(self, key: str) -> list[Any]:
        """An array of tables ([[key]]), each to be read `with item as table:`."""
        self._seen.add(key)
        value = self._data.get(key, [])
        if not isinstance(value, list):
            self.problem(key, f"must be an array of tables ([[{key}]]), got {_kind(value)}")
            return []
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                self.problem(f"{key}[{i}]", f"must be a table, got {_kind(item)}")
                continue
            items.append(self._reader.table(item, f"{self._key(key)}[{i}]"))
        return items

    def consume(self, key: str) -> None:
        self._seen.add(key)

    def names(self) -> list[str]:
        return list(self._data)

    def report_unknown(self) -> None:
        for key in self._data:
            if key not in self._seen:
                self.problem(key, "unknown key")

    @contextmanager
    def sub(self, key: str, *, required: bool = False) -> Iterator[Table]:
        self._seen.add(key)
        value = self._data.get(key, None if required else {})
        if not isinstance(value, Mapping):
            self.problem(key, f"must be a table, got {_kind(value)}")
            value = {}
        with self._reader.table(value, self._key(key)) as table:
            yield table

    def _get(self, key: str, default: T, kind: type | tuple[type, ...], want: str) -> Any:
        self._seen.add(key)
        if key not in self._data:
            return default
        value = self._data[key]
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.problem(key, f"must be {want}, got a boolean")
            return default
        if not isinstance(value, kind):
            self.problem(key, f"must be {want}, got {_kind(value)}")
            return default
        return value

    def string(self, key: str, default: str, *, pattern: re.Pattern[str] | None = None) -> str:
        value: str = self._get(key, default, str, "a string")
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(key, f"{value!r} does not match {pattern.pattern}")
            return default
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in options:
            self.problem(key, f"must be one of {', '.join(map(repr, options))}, got {value!r}")
            return default
        return value

    def integer(self, key: str, default: int, *, low: int, high: int) -> int:
        value: int = self._get(key, default, int, "an integer")
        if not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}, got {value}")
            return default
        return value

    def number(self, key: str, default: float, *, low: float, high: float) -> float:
        value = float(self._get(key, default, (int, float), "a number"))
        if not low <= value <= high:
            self.problem(key, f"must be between {low} and {high}, got {value}")
            return default
        return value

    def path(self, key: str, default: Path | None) -> Path | None:
        value: str | None = self._get(key, None, str, "a path string")
        if value is None:
            if default is None and key not in self._data:
                self.problem(key, "missing (required)")
            return default
        if not value:
            self.problem(key, "must not be empty")
            return default
        problem = path_problem(value)
        if problem is not None:
            self.problem(key, problem)
            return default
        return (self._reader.anchor / value).resolve()

    def size(self, key: str, default: int | None) -> int | None:
        """Bytes from "4G", "512M" or an integer; None (no limit) when absent and no default."""
        from lexi_maint.units import parse_size

        value = self._get(key, default, (str, int), 'a size such as "4G"')
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def duration(self, key: str, default: float) -> float:
        """Seconds from "90s", "30min", "6h" or a number."""
        from lexi_maint.units import parse_duration

        value = self._get(key, default, (str, int, float), 'a duration such as "30min"')
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return default

    def boolean(self, key: str, default: bool) -> bool:
        value: bool = self._get(key, default, bool, "true or false")
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key, list(default), list, "a list of strings")
        bad = [i for i, item in enumerate(value) if not isinstance(item, str) or not item]
        for i in bad:
            self.problem(f"{key}[{i}]", "must be a non-empty string")
        if not value:
            self.problem(key, "must name at least one pattern")
        if bad or not value:
            return default
        return tuple(value)


NAME_MAX = 255  # bytes in one path component (Linux)
PATH_MAX = 4095  # bytes in a whole path, without the terminating NUL


def path_problem(value: str) -> str | None:
    """Why `value` cannot be a path on Linux, or None."""
    if "\0" in value:
        return "must not contain a NUL character"
    encoded = value.encode("utf-8", "surrogateescape")
    if len(encoded) > PATH_MAX:
        return f"is {len(encoded)} bytes long; a path may have at most {PATH_MAX}"
    longest = max((len(part) for part in encoded.split(b"/")), default=0)
    if longest > NAME_MAX:
        return f"has a component of {longest} bytes; a file name may have at most {NAME_MAX}"
    return None


def _kind(value: object) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)
