from __future__ import annotations

from pathlib import Path

from lexi_maint.config import parse_config
from lexi_maint.lifecycle.preflight import _library_problem, check_graph, check_input, check_memory


def test_a_library_that_cannot_load_is_named(tmp_path: Path) -> None:
    fake = tmp_path / "falkordb.so"
    fake.write_bytes(b"not an ELF file")
    problem = _library_problem(fake)
    assert problem is not None and "falkordb.so" in problem


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
    missing = parse_config({"jobs": {"j": {"input": str(tmp_path / "no")}}}, tmp_path / "c.toml")
    assert not check_input(missing.job("j")).ok
