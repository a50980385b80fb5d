"""Configuration: TOML file -> validated, frozen dataclasses.

Every problem is collected with the file and the dotted key path, and all are reported at
once (`ConfigError.problems`). Unknown keys are errors. Relative paths are resolved against
the directory of the configuration file.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lexi_maint.config.alerts import AlertsConfig, parse_alerts
from lexi_maint.config.graph import GraphConfig, parse_graph
from lexi_maint.config.llm import LlmConfig, parse_llm
from lexi_maint.config.metrics import MetricsConfig, parse_metrics
from lexi_maint.config.pipeline import ChunkSettings, ParseSettings
from lexi_maint.config.planner import PlannerConfig, parse_planner
from lexi_maint.config.service import (
    DEFAULT_JOB_USER,
    DaemonConfig,
    JobLimits,
    Quiesce,
    ServiceConfig,
    parse_daemon,
    parse_limits,
    parse_service,
)
from lexi_maint.config.table import Reader, Table
from lexi_maint.errors import ConfigError, ConfigProblem
from lexi_maint.state import StatePaths

DEFAULT_CONFIG_PATH = Path("/etc/lexi-maint/lexi-maint.toml")
CONFIG_ENV = "LEXI_MAINT_CONFIG"
JOB_NAME = re.compile(r"[A-Za-z0-9_-]+")
# Unit names (lexi-batch@NAME.service, lexi-pipeline-RUN_ID-N.service) and run event files
# carry the job name; systemd allows 255 characters per unit name: stay far below.
JOB_NAME_MAX = 64
# Where documents can never be: kernel and device trees (reading them blocks or never ends).
_FORBIDDEN_INPUTS = (Path("/proc"), Path("/sys"), Path("/dev"))
_SOCKET_MAX = 107  # bytes in a Unix socket path (the embedded FalkorDB's, under state_dir)
DEFAULT_PATTERNS = ("*.txt", "*.pdf")
DEFAULT_STATE_DIR = Path("/var/lib/lexi-maint")


@dataclass(frozen=True)
class JobConfig:
    name: str
    input: Path
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    workers: int = 2
    max_attempts: int = 3
    document_timeout: float = 1800.0
    memory_watermark: float = 0.70
    outage_budget: float = 900.0  # seconds a dependency may be down before the run stops
    parse: ParseSettings = field(default_factory=ParseSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    limits: JobLimits = field(default_factory=JobLimits)
    llm: LlmConfig = field(default_factory=LlmConfig)  # the [llm] section, for the stages
    quiesce: Quiesce = Quiesce.STOP  # what the daemon does to the service during a run


@dataclass(frozen=True)
class Config:
    source: Path
    state_dir: Path
    graph: GraphConfig
    jobs: Mapping[str, JobConfig]
    service: ServiceConfig = field(default_factory=ServiceConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)

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


def config_origin(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Where `resolve_config_path` took the path from, for messages."""
    if cli_value:
        return "given by --config"
    if environ.get(CONFIG_ENV):
        return f"named by ${CONFIG_ENV}"
    return f"the default path; ${CONFIG_ENV} is not set"


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
    except RecursionError:
        problem = ConfigProblem(str(path), "", "arrays or tables nested too deeply")
        raise ConfigError([problem]) from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> Config:
    """Validate an already-decoded TOML document (pure; `path` only names and anchors)."""
    reader = Reader(str(path), path.parent)
    with reader.table(raw, "") as top:
        state_dir = top.path("state_dir", DEFAULT_STATE_DIR) or DEFAULT_STATE_DIR
        graph = parse_graph(top)
        socket = StatePaths(state_dir).falkordb_socket
        if graph.backend == "falkordb" and len(os.fsencode(socket)) > _SOCKET_MAX:
            top.problem("state_dir", f"is too long for the graph server's socket {socket}"
                        f" (at most {_SOCKET_MAX} bytes); choose a shorter path")  # fmt: skip
        service = parse_service(top)
        daemon = parse_daemon(top)
        llm = replace(parse_llm(top), state_dir=StatePaths(state_dir).llm)
        planner = parse_planner(top)
        metrics = parse_metrics(top)
        alerts = parse_alerts(top)
        jobs = _jobs(top, llm)
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(
        source=path,
        state_dir=state_dir,
        graph=graph,
        jobs=jobs,
        service=service,
        daemon=daemon,
        llm=llm,
        planner=planner,
        metrics=metrics,
        alerts=alerts,
    )


def _jobs(top: Table, llm: LlmConfig) -> dict[str, JobConfig]:
    jobs: dict[str, JobConfig] = {}
    with top.sub("jobs") as t:
        for name in t.names():
            if not JOB_NAME.fullmatch(name) or len(name) > JOB_NAME_MAX:
                shown = name if len(name) <= JOB_NAME_MAX else f"{name[:JOB_NAME_MAX]}…"
                t.problem(shown, f"job names may only use letters, digits, '_' and '-', at most"
                          f" {JOB_NAME_MAX} of them")  # fmt: skip
                t.consume(name)
                continue
            job = _job(t, name, llm)
            if job is not None:
                jobs[name] = job
    return jobs


def _job(jobs: Table, name: str, llm: LlmConfig) -> JobConfig | None:
    with jobs.sub(name, required=True) as t:
        input_dir = t.path("input", None)
        if input_dir is not None and (problem := _input_problem(input_dir)):
            t.problem("input", problem)
        patterns = t.string_list("patterns", DEFAULT_PATTERNS)
        for pattern in patterns:
            if problem := pattern_problem(pattern):
                t.problem("patterns", f"{pattern!r} {problem}")
        # LLM stages wait on the network, not on memory: more documents in flight by default
        workers = t.integer("workers", llm.workers if llm.enabled else 2, low=1, high=64)
        attempts = t.integer("max_attempts", 3, low=1, high=100)
        timeout = t.number("document_timeout", 1800.0, low=1.0, high=7 * 86400.0)
        watermark = t.number("memory_watermark", 0.70, low=0.05, high=1.0)
        quiesce = Quiesce(t.choice("quiesce", tuple(q.value for q in Quiesce), Quiesce.STOP))
        outage_budget = t.number("outage_budget", 900.0, low=0.0, high=7 * 86400.0)
        parse = _parse_settings(t)
        chunk = _chunk_settings(t)
        limits = parse_limits(t)
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
        outage_budget=outage_budget,
        parse=parse,
        chunk=chunk,
        limits=limits,
        llm=llm,
        quiesce=quiesce,
    )


def pattern_problem(pattern: str) -> str | None:
    """Why a glob pattern could reach outside the input directory, or None. Patterns stay
    inside `input`: relative, without '..'."""
    if not pattern:
        return "is empty"
    if "\0" in pattern:
        return "contains a NUL character"
    if pattern.startswith("/"):
        return "is absolute; patterns are relative to input (e.g. '**/*.pdf')"
    if ".." in pattern.split("/"):
        return "climbs out of input with '..'; patterns must stay inside it"
    return None


def _input_problem(path: Path) -> str | None:
    if path == Path("/"):
        return "must be a directory of documents, not the root of the filesystem"
    for forbidden in _FORBIDDEN_INPUTS:
        if path.is_relative_to(forbidden):
            return f"{path} is under {forbidden}, which holds no documents"
    return None


def environment_problems(config: Config) -> list[ConfigProblem]:
    """What `config check` also looks at on this machine: inputs and job users exist."""
    import pwd

    source = str(config.source)
    problems = []
    for job in config.jobs.values():
        where = f"jobs.{job.name}"
        if job.input.exists() and not job.input.is_dir():
            problems.append(
                ConfigProblem(source, f"{where}.input", f"{job.input} is not a directory")
            )
        user = job.limits.user
        if user and user != DEFAULT_JOB_USER:  # the default one: doctor says if it is missing
            try:
                pwd.getpwnam(user)
            except KeyError:
                message = f"no user named {user!r} on this machine"
                problems.append(ConfigProblem(source, f"{where}.limits.user", message))
    return problems


def _parse_settings(job: Table) -> ParseSettings:
    default = ParseSettings()
    with job.sub("parse") as t:
        encoding = t.string("fallback_encoding", default.fallback_encoding)
        if not _known_encoding(encoding):
            t.problem("fallback_encoding", f"unknown encoding {encoding!r} (try 'cp1252')")
            encoding = default.fallback_encoding
        max_bytes = t.integer("max_bytes", default.max_bytes, low=1, high=2**40)
        page_seconds = t.number("page_seconds", default.page_seconds, low=0.0, high=3600.0)
    return ParseSettings(fallback_encoding=encoding, max_bytes=max_bytes, page_seconds=page_seconds)


def _chunk_settings(job: Table) -> ChunkSettings:
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
