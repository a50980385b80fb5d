"""The `[graph]` section and `[graph.memgraph]` table: defaults, values, every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lexi_maint.config.graph import (
    GraphConfig,
    MemgraphConfig,
    RetryPolicy,
    parse_graph,
    uri_problem,
)
from lexi_maint.config.table import Reader
from lexi_maint.errors import ConfigProblem

ANCHOR = Path("/etc/lexi-maint")


def parse(raw: dict[str, Any]) -> tuple[GraphConfig, list[ConfigProblem]]:
    reader = Reader("lexi.toml", ANCHOR)
    with reader.table(raw, "") as top:
        config = parse_graph(top)
    return config, reader.problems


def messages(problems: list[ConfigProblem]) -> list[str]:
    return [str(p) for p in problems]


def test_defaults_are_the_embedded_falkordb() -> None:
    config, problems = parse({})
    assert problems == []
    assert config == GraphConfig(backend="falkordb", name="lexi", memgraph=MemgraphConfig())
    assert config.memgraph.uri == "bolt://localhost:7687"
    assert config.memgraph.where == "Memgraph at bolt://localhost:7687"


def test_every_memgraph_key_is_read() -> None:
    config, problems = parse(
        {
            "graph": {
                "backend": "memgraph",
                "memgraph": {
                    "uri": "bolt://graph.internal:7688",
                    "username": "lexi",
                    "password_file": "secrets/memgraph-password",
                    "database": "lexi_prod",
                    "tls": True,
                    "tls_ca_file": "/etc/ssl/private-ca.pem",
                    "batch_size": 250,
                    "connect_timeout": 3,
                    "transaction_timeout": 120.5,
                    "max_attempts": 4,
                    "backoff_initial": 0.2,
                    "backoff_max": 1.5,
                },
            }
        }
    )
    assert problems == []
    assert config.backend == "memgraph"
    assert config.memgraph == MemgraphConfig(
        uri="bolt://graph.internal:7688",
        username="lexi",
        password_file=ANCHOR / "secrets/memgraph-password",
        database="lexi_prod",
        tls=True,
        tls_ca_file=Path("/etc/ssl/private-ca.pem"),
        batch_size=250,
        connect_timeout=3.0,
        transaction_timeout=120.5,
        retry=RetryPolicy(max_attempts=4, backoff_initial=0.2, backoff_max=1.5),
    )
    assert config.memgraph.where == "Memgraph at bolt://graph.internal:7688, database 'lexi_prod'"


def test_every_problem_is_reported_with_its_dotted_key() -> None:
    _, problems = parse(
        {
            "graph": {
                "backend": "neo4j",
                "colour": "blue",
                "memgraph": {
                    "uri": "http://graph:7687",
                    "tls": "yes",
                    "batch_size": 0,
                    "connect_timeout": -1,
                    "max_attempts": 0,
                    "backoff_initial": 2.0,
                    "backoff_max": 1.0,
                    "database": "no spaces",
                    "password": "hunter2",
                },
            }
        }
    )
    assert messages(problems) == [
        "lexi.toml: graph.backend: must be one of 'falkordb', 'memgraph', got 'neo4j'",
        "lexi.toml: graph.memgraph.uri: must start with bolt:// or neo4j://, got http scheme",
        "lexi.toml: graph.memgraph.database: 'no spaces' does not match [A-Za-z0-9_.-]*",
        "lexi.toml: graph.memgraph.tls: must be true or false, got a string",
        "lexi.toml: graph.memgraph.batch_size: must be between 1 and 1000000, got 0",
        "lexi.toml: graph.memgraph.connect_timeout: must be between 0.1 and 3600.0, got -1.0",
        "lexi.toml: graph.memgraph.max_attempts: must be between 1 and 100, got 0",
        "lexi.toml: graph.memgraph.backoff_max: must be at least backoff_initial (1 < 2)",
        "lexi.toml: graph.memgraph.password: unknown key",
        "lexi.toml: graph.colour: unknown key",
    ]


def test_a_password_in_the_uri_is_refused_without_repeating_it() -> None:
    _, problems = parse({"graph": {"memgraph": {"uri": "bolt://lexi:hunter2@graph:7687"}}})
    assert messages(problems) == [
        "lexi.toml: graph.memgraph.uri: must not contain credentials: "
        "set username and password_file instead"
    ]
    assert "hunter2" not in str(problems)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("bolt://graph:7687", None),
        ("bolt://graph", None),
        ("neo4j://graph:7687/", None),
        ("bolt://[::1]:7687", None),
        ("bolt+s://graph:7687", "write bolt:// and set tls = true"),
        ("neo4j+ssc://graph:7687", "write neo4j:// and set tls = true"),
        ("bolt://graph:port", "is not a URI"),
        ("bolt://graph:70000", "is not a URI"),
        ("bolt://graph:0", "port 0 is not a port"),
        ("bolt://", "names no host"),
        ("bolt://graph:7687/lexi", "must be just scheme, host and port"),
        ("bolt://graph:7687?db=x", "must be just scheme, host and port"),
        ("graph:7687", "must start with bolt:// or neo4j://"),
        ("bolt://user@graph", "must not contain credentials"),
    ],
)
def test_uri_problems(uri: str, problem: str | None) -> None:
    found = uri_problem(uri)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_a_ca_file_without_tls_is_a_problem() -> None:
    _, problems = parse({"graph": {"memgraph": {"tls_ca_file": "ca.pem"}}})
    assert messages(problems) == [
        "lexi.toml: graph.memgraph.tls_ca_file: is only used with tls = true; "
        "set tls = true or remove it"
    ]


def test_retry_delay_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=8, backoff_initial=0.1, backoff_max=1.0)
    assert policy.delay(1, 0.0) == pytest.approx(0.05)
    assert policy.delay(1, 0.999999) == pytest.approx(0.1)
    assert policy.delay(2, 0.5) == pytest.approx(0.15)  # cap 0.2: between 0.1 and 0.2
    assert policy.delay(4, 0.0) == pytest.approx(0.4)
    assert policy.delay(5, 0.0) == pytest.approx(0.5)  # cap reached: 1.0
    assert policy.delay(50, 0.999999) == pytest.approx(1.0)
    assert RetryPolicy(backoff_initial=0.0, backoff_max=0.0).delay(3, 0.7) == 0.0


def test_the_shipped_configuration_documents_every_key_with_its_default() -> None:
    from lexi_maint.config import load_config

    shipped = Path(__file__).resolve().parents[3] / "config" / "lexi-maint.toml"
    assert load_config(shipped).graph == GraphConfig()
    text = shipped.read_text()
    keys = [
        "backend", "name", "uri", "username", "password_file", "database", "tls",
        "tls_ca_file", "batch_size", "connect_timeout", "transaction_timeout",
        "max_attempts", "backoff_initial", "backoff_max",
    ]  # fmt: skip
    for key in keys:
        assert f"\n{key} = " in text or f"\n# {key} = " in text, key


def test_the_shipped_configuration_names_every_llm_and_alerts_key() -> None:
    """An operator reads config/lexi-maint.toml (installed as /etc/lexi-maint/lexi-maint.toml)
    for the keys: every scalar key of [llm] and [alerts] is there, set or commented out."""
    from dataclasses import fields

    from lexi_maint.config.alerts import AlertsConfig
    from lexi_maint.config.llm import LlmConfig

    text = (Path(__file__).resolve().parents[3] / "config" / "lexi-maint.toml").read_text()
    tables = {"retry", "prices", "state_dir"}  # sub-tables; state_dir is the top-level key
    keys = [f.name for f in fields(LlmConfig) if f.name not in tables]
    keys += [f.name for f in fields(AlertsConfig)]
    assert "max_response_bytes" in keys and "ping_url" in keys
    for key in keys:
        assert f"\n{key} = " in text or f"\n# {key} = " in text, key
