"""Configuration: TOML file -> validated, frozen dataclasses.

Every problem is collected with the file and the dotted key path, and all are reported at
once (`ConfigError.problems`). Unknown keys are errors. Relative paths are resolved against
the directory of the configuration file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lexi_maint.errors import ConfigError, ConfigProblem
from lexi_maint.pipeline.chunk import ChunkSettings
from lexi_maint.pipeline.parse import ParseSettings

DEFAULT_CONFIG_PATH = Path("/etc/lexi-maint/lexi-maint.toml")
CONFIG_ENV = "LEXI_MAINT_CONFIG"
JOB_NAME = re.compile(r"[A-Za-z0-9_-]+")
DEFAULT_PATTERNS = ("*.txt", "*.pdf")
DEFAULT_STATE_DIR = Path("/var/lib/lexi-maint")

T = TypeVar("T")


@dataclass(frozen=True)
class GraphConfig:
    backend: str = "falkordb"
    name: str = "lexi"


@dataclass(frozen=True)
class JobConfig:
    name: str
    input: Path
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    workers: int = 2
    max_attempts: int = 3
    document_timeout: float = 1800.0
    memory_watermark: float = 0.70
    parse: ParseSettings = field(default_factory=ParseSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)


@dataclass(frozen=True)
class Config:
    source: Path
    state_dir: Path
    graph: GraphConfig
    jobs: Mapping[str, JobConfig]

    def job(self, name: str) -> JobConfig:
        from lexi_maint.errors import UsageError

        try:
            return self.jobs[name]
        except KeyError:
            known = ", ".join(sorted(self.jobs)) or "none"
            raise UsageError(
                f"no job named {name!r} in {self.source} (configured: {known})"
            ) from None


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--config wins over $LEXI_MAINT_CONFIG, which wins over the default path."""
    if cli_value:
        return Path(cli_value)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_config(path: Path) -> Config:
    """Read and validate `path`; raise ConfigError listing every problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(str(path), "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"cannot read: {exc}")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(str(path), "", f"not valid TOML: {exc}")]) from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-decoded TOML document (pure; `path` only names and anchors)."""
    reader = _Reader(str(path), path.parent)
    with reader.table(raw, "") as top:
        state_dir = top.path("state_dir", DEFAULT_STATE_DIR) or DEFAULT_STATE_DIR
        graph = _graph(top)
        jobs = _jobs(top)
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(source=path, state_dir=state_dir, graph=graph, jobs=jobs)


def _graph(top: _Table) -> GraphConfig:
    with top.sub("graph") as t:
        backend = t.choice("backend", ("falkordb",), "falkordb")
        name = t.string("name", "lexi", pattern=JOB_NAME)
    return GraphConfig(backend=backend, name=name)


def _jobs(top: _Table) -> dict[str, JobConfig]:
    jobs: dict[str, JobConfig] = {}
    with top.sub("jobs") as t:
        for name in t.names():
            if not JOB_NAME.fullmatch(name):
                t.problem(name, "job names may only use letters, digits, '_' and '-'")
                t.consume(name)
                continue
            job = _job(t, name)
            if job is not None:
                jobs[name] = job
    return jobs


def _job(jobs: _Table, name: str) -> JobConfig | None:
    with jobs.sub(name, required=True) as t:
        input_dir = t.path("input", None)
        patterns = t.string_list("patterns", DEFAULT_PATTERNS)
        workers = t.integer("workers", 2, low=1, high=64)
        attempts = t.integer("max_attempts", 3, low=1, high=100)
        timeout = t.number("document_timeout", 1800.0, low=1.0, high=7 * 86400.0)
        watermark = t.number("memory_watermark", 0.70, low=0.05, high=1.0)
        parse = _parse_settings(t)
        chunk = _chunk_settings(t)
    if input_dir is None:
        return None
    return JobConfig(
        name=name,
        input=input_dir,
        patterns=patterns,
        workers=workers,
        max_attempts=attempts,
        document_timeout=timeout,
        memory_watermark=watermark,
        parse=parse,
        chunk=chunk,
    )


def _parse_settings(job: _Table) -> ParseSettings:
    default = ParseSettings()
    with job.sub("parse") as t:
        encoding = t.string("fallback_encoding", default.fallback_encoding)
        if not _known_encoding(encoding):
            t.problem("fallback_encoding", f"unknown encoding {encoding!r} (try 'cp1252')")
            encoding = default.fallback_encoding
        max_bytes = t.integer("max_bytes", default.max_bytes, low=1, high=2**40)
    return ParseSettings(fallback_encoding=encoding, max_bytes=max_bytes)


def _chunk_settings(job: _Table) -> ChunkSettings:
    default = ChunkSettings()
    with job.sub("chunk") as t:
        low = t.integer("min_chars", default.min_chars, low=1, high=10**6)
        high = t.integer("max_chars", default.max_chars, low=2, high=10**6)
        if low >= high:
            t.problem("min_chars", f"must be smaller than max_chars ({low} >= {high})")
            return default
    return ChunkSettings(min_chars=low, max_chars=high)


def _known_encoding(name: str) -> bool:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


class _Reader:
    """Owns the problem list and the file name/anchor shared by every table."""

    def __init__(self, file: str, anchor: Path) -> None:
        self.file = file
        self.anchor = anchor
        self.problems: list[ConfigProblem] = []

    @contextmanager
    def table(self, data: Mapping[str, Any], prefix: str) -> Iterator[_Table]:
        table = _Table(self, data, prefix)
        yield table
        table.report_unknown()


class _Table:
    """Typed, checked access to one TOML table; remembers which keys were read."""

    def __init__(self, reader: _Reader, data: Mapping[str, Any], prefix: str) -> None:
        self._reader = reader
        self._data = data
        self._prefix = prefix
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def problem(self, key: str, message: str) -> None:
        self._reader.problems.append(ConfigProblem(self._reader.file, self._key(key), message))

    def consume(self, key: str) -> None:
        self._seen.add(key)

    def names(self) -> list[str]:
        return list(self._data)

    def report_unknown(self) -> None:
        for key in self._data:
            if key not in self._seen:
                self.problem(key, "unknown key")

    @contextmanager
    def sub(self, key: str, *, required: bool = False) -> Iterator[_Table]:
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
        return (self._reader.anchor / value).resolve()

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


def _kind(value: object) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return names.get(type(value), type(value).__name__)
