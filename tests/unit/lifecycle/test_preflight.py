from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lexi_maint.config import parse_config
from lexi_maint.lifecycle.preflight import (
    Check,
    _library_problem,
    check_graph,
    check_input,
    check_job_user,
    check_memory,
    check_private_tmp,
    fitting_size,
)
from lexi_maint.units import parse_size


@pytest.mark.allow_subprocess(sys.executable)
def test_a_library_that_cannot_load_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "falkordb.so"
    fake.write_bytes(b"not an ELF file")
    problem = _library_problem(fake)
    assert problem is not None and "falkordb.so" in problem


@pytest.mark.allow_subprocess(sys.executable)
def test_the_installed_falkordb_module_loads() -> None:
    check = check_graph(parse_config({"jobs": {}}, Path("/c.toml")))
    assert check.ok, check.detail


def test_input_and_memory_checks(tmp_path: Path) -> None:
    config = parse_config(
        {"jobs": {"j": {"input": str(tmp_path), "limits": {"memory_max": "1T"}}}},
        tmp_path / "c.toml",
    )
    (tmp_path / "a.txt").write_text("x")
    job = config.job("j")
    assert check_input(job).ok and "1 files match" in check_input(job).detail
    memory = check_memory(job, service_usage=0)
    assert not memory.ok and "MemoryMax=1T" in memory.detail
    assert "set [jobs.j.limits] memory_max ≤ " in memory.detail, memory.detail
    missing = parse_config({"jobs": {"j": {"input": str(tmp_path / "no")}}}, tmp_path / "c.toml")
    assert not check_input(missing.job("j")).ok


@pytest.mark.parametrize(
    ("size", "text"),
    [(int(2.45 * 2**30), "2.4G"), (3 * 2**30, "3G"), (2**30 - 1, "1023M"), (5 * 2**20, "5M")],
)
def test_what_would_fit_is_rounded_down(size: int, text: str) -> None:
    assert fitting_size(size) == text
    assert parse_size(text) <= size


def test_job_user_must_exist_and_be_able_to_read_the_input(tmp_path: Path) -> None:
    import os

    docs = tmp_path / "docs"
    docs.mkdir()

    def check(user: str, state_dir: Path = Path("/var/lib/lexi-maint-test")) -> Check:
        raw = {"state_dir": str(state_dir), "jobs": {"j": {"input": str(docs),
               "limits": {"user": user}}}}  # fmt: skip
        config = parse_config(raw, tmp_path / "c.toml")
        return check_job_user(config, config.job("j"))

    assert check("").ok and "root" in check("").detail
    unknown = check("no-such-lexi-user")
    assert not unknown.ok and "does not exist" in unknown.detail
    os.chmod(docs, 0o700)
    closed = check("nobody")
    assert not closed.ok and "nobody may not read" in closed.detail and "0700" in closed.detail
    os.chmod(docs, 0o755)
    assert check("nobody").ok, check("nobody").detail
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    unreachable = check("nobody", hidden / "state")
    assert not unreachable.ok and f"{hidden} is closed to it" in unreachable.detail


def test_job_paths_below_tmp_are_refused() -> None:
    def check(input_dir: str, state_dir: str) -> Check:
        raw = {"state_dir": state_dir, "jobs": {"j": {"input": input_dir}}}
        config = parse_config(raw, Path("/etc/lexi-maint/c.toml"))
        return check_private_tmp(config, config.job("j"))

    assert check("/srv/docs", "/var/lib/lexi-maint").ok
    refused = check("/tmp/docs", "/var/tmp/state")
    assert not refused.ok
    assert "input /tmp/docs and state_dir /var/tmp/state lie below /tmp" in refused.detail
    assert check("/tmpfiles/docs", "/var/lib/lexi-maint").ok
