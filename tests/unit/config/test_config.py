from __future__ import annotations

from pathlib import Path

import pytest

from lexi_maint.config import (
    DEFAULT_CONFIG_PATH,
    load_config,
    parse_config,
    resolve_config_path,
)
from lexi_maint.errors import ConfigError, UsageError

REPO = Path(__file__).resolve().parents[3]


def problems(raw: dict[str, object], path: Path = Path("/etc/x.toml")) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, path)
    return [f"{p.key}: {p.message}" for p in info.value.problems]


def test_minimal_job_gets_defaults_and_relative_paths_resolve_against_the_file() -> None:
    config = parse_config({"jobs": {"a": {"input": "docs"}}}, Path("/etc/lexi/c.toml"))
    job = config.job("a")
    assert job.input == Path("/etc/lexi/docs")
    assert job.patterns == ("*.txt", "*.pdf")
    assert job.workers == 2
    assert config.state_dir == Path("/var/lib/lexi-maint")
    assert job.chunk.max_chars == 4000


def test_every_problem_is_reported_with_its_dotted_path() -> None:
    found = problems(
        {
            "state_dir": 5,
            "colour": "blue",
            "jobs": {
                "bad name!": {"input": "x"},
                "a": {
                    "input": "x",
                    "workers": 0,
                    "patterns": ["*.txt", 3],
                    "chunk": {"min_chars": 500, "max_chars": 100},
                    "parse": {"fallback_encoding": "klingon"},
                    "extra": True,
                },
                "b": {"workers": "four"},
            },
        }
    )
    assert found == [
        "state_dir: must be a path string, got an integer",
        "jobs.bad name!: job names may only use letters, digits, '_' and '-', at most 64 of them",
        "jobs.a.patterns[1]: must be a non-empty string",
        "jobs.a.workers: must be between 1 and 64, got 0",
        "jobs.a.parse.fallback_encoding: unknown encoding 'klingon' (try 'cp1252')",
        "jobs.a.chunk.min_chars: must be smaller than max_chars (500 >= 100)",
        "jobs.a.extra: unknown key",
        "jobs.b.input: missing (required)",
        "jobs.b.workers: must be an integer, got a string",
        "colour: unknown key",
    ]


def test_booleans_are_not_numbers() -> None:
    assert problems({"jobs": {"a": {"input": "x", "workers": True}}}) == [
        "jobs.a.workers: must be an integer, got a boolean"
    ]


def test_job_table_must_be_a_table() -> None:
    assert problems({"jobs": {"a": 3}}) == [
        "jobs.a: must be a table, got an integer",
        "jobs.a.input: missing (required)",
    ]


def test_load_config_names_the_file_for_syntax_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("state_dir = \n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert str(bad) in str(info.value)
    assert "not valid TOML" in str(info.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_unknown_job_lists_configured_ones() -> None:
    config = parse_config({"jobs": {"a": {"input": "x"}}}, Path("/c.toml"))
    with pytest.raises(UsageError, match=r"no job named 'zz'.*configured: a"):
        config.job("zz")


def test_config_path_precedence() -> None:
    assert resolve_config_path("/a.toml", {"LEXI_MAINT_CONFIG": "/b.toml"}) == Path("/a.toml")
    assert resolve_config_path(None, {"LEXI_MAINT_CONFIG": "/b.toml"}) == Path("/b.toml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH


@pytest.mark.parametrize("name", ["lexi-maint.toml", "demo.toml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = load_config(REPO / "config" / name)
    assert "cao_import" in config.jobs


def test_the_example_config_shows_the_defaults_of_service_daemon_and_limits() -> None:
    from lexi_maint.config.service import DaemonConfig, JobLimits, ServiceConfig

    config = load_config(REPO / "config" / "lexi-maint.toml")
    assert config.service == ServiceConfig()
    assert config.daemon == DaemonConfig()
    assert config.job("cao_import").limits == JobLimits()
