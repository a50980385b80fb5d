"""Which secret files the daemon hands to the job unit as systemd credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lexi_maint.config import parse_config
from lexi_maint.lifecycle.sandbox import job_credentials


def credentials(**raw: Any) -> tuple[tuple[str, Path], ...]:
    return job_credentials(parse_config({"jobs": {}, **raw}, Path("/etc/lexi-maint/c.toml")))


def test_nothing_to_hand_over_by_default() -> None:
    assert credentials() == ()


def test_the_daemon_key_file_wins_over_the_llm_one() -> None:
    llm = {"provider": "deepseek", "api_key_file": "/etc/lexi-maint/llm-key"}
    assert credentials(llm=llm) == (("deepseek-api-key", Path("/etc/lexi-maint/llm-key")),)
    daemon = {"api_key_file": "/etc/lexi-maint/deepseek-api-key"}
    assert credentials(llm=llm, daemon=daemon) == (
        ("deepseek-api-key", Path("/etc/lexi-maint/deepseek-api-key")),
    )
    # an unused [llm] key stays home
    assert credentials(llm={"api_key_file": "/etc/lexi-maint/llm-key"}) == ()


def test_the_memgraph_password_file_is_handed_over_when_memgraph_is_used() -> None:
    memgraph = {"username": "lexi", "password_file": "/etc/lexi-maint/memgraph-password"}
    assert credentials(graph={"backend": "memgraph", "memgraph": memgraph}) == (
        ("memgraph-password", Path("/etc/lexi-maint/memgraph-password")),
    )
    assert credentials(graph={"backend": "falkordb", "memgraph": memgraph}) == ()
