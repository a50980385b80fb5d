"""Hostile and broken configuration: one clear problem each, never a traceback.

Fuzzed with hypothesis: any decoded TOML document given to parse_config, and any text given
to `lexi-maint config check`, ends in a Config or a ConfigError (exit 0 or 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lexi_maint.cli.main import main
from lexi_maint.config import load_config, parse_config
from lexi_maint.errors import ConfigError

CONFIG = Path("/etc/lexi/c.toml")


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, CONFIG)
    return [f"{p.key}: {p.message}" for p in caught.value.problems]


def check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "c.toml"
    path.write_text(text)
    code = main(["--config", str(path), "config", "check"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


def test_deeply_nested_arrays_are_one_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = check(tmp_path, "x = " + "[" * 5000 + "]" * 5000 + "\n", capsys)
    assert code == 2 and "nested too deeply" in out


def test_a_job_name_longer_than_unit_names_allow_is_refused() -> None:
    found = problems({"jobs": {"j" * 300: {"input": "x"}}})
    assert len(found) == 1 and "at most 64" in found[0]


def test_a_path_component_longer_than_255_bytes_is_refused() -> None:
    found = problems({"state_dir": "/var/" + "s" * 300, "jobs": {"a": {"input": "x"}}})
    assert found == ["state_dir: has a component of 300 bytes; a file name may have at most 255"]


def test_a_state_dir_too_long_for_the_graph_socket_is_refused() -> None:
    found = problems({"state_dir": "/var/" + "/s" * 60, "jobs": {"a": {"input": "x"}}})
    assert len(found) == 1 and "too long for the graph server's socket" in found[0]


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("/etc/*", "is absolute"),
        ("../../../../etc/pass*", "climbs out of input"),
        ("docs/../../x", "climbs out of input"),
        ("", "must be a non-empty string"),
    ],
)
def test_patterns_stay_inside_input(pattern: str, why: str) -> None:
    found = problems({"jobs": {"a": {"input": "x", "patterns": [pattern]}}})
    assert any(why in p for p in found), found


@pytest.mark.parametrize("where", ["/", "/proc", "/proc/1", "/dev/zero", "/sys/kernel"])
def test_kernel_trees_and_the_root_are_not_inputs(where: str) -> None:
    found = problems({"jobs": {"a": {"input": where}}})
    assert len(found) == 1 and found[0].startswith("jobs.a.input: ")


def test_credentials_in_the_model_url_are_refused_without_repeating_them() -> None:
    found = problems({"llm": {"base_url": "https://me:s3cret@api.example"},
                      "jobs": {"a": {"input": "x"}}})  # fmt: skip
    assert len(found) == 1 and "api_key_file" in found[0] and "s3cret" not in found[0]


def test_config_check_names_an_unknown_user_and_an_input_that_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notadir").write_text("x")
    text = (
        f'state_dir = "{tmp_path}/state"\n[jobs.a]\ninput = "{tmp_path}/notadir"\n'
        '[jobs.a.limits]\nuser = "no-such-user-xyz"\n'
    )
    code, out = check(tmp_path, text, capsys)
    assert code == 2
    assert "jobs.a.input: " in out and "is not a directory" in out
    assert "jobs.a.limits.user: no user named 'no-such-user-xyz'" in out


# -- fuzzing --------------------------------------------------------------------------------

KEYS = ["state_dir", "jobs", "graph", "llm", "service", "daemon", "input", "patterns",
        "workers", "max_attempts", "document_timeout", "memory_watermark", "outage_budget",
        "parse", "chunk", "limits", "max_bytes", "min_chars", "max_chars", "user", "backend",
        "memgraph", "uri", "provider", "base_url", "unit", "extra_matchers", "cao"]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.sampled_from(["/", "/proc", "..", "../x", "*.txt", "**/*", "a" * 300, "\0", "4G"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
documents = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), values,
                            max_size=6)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(documents)
def test_any_decoded_document_is_a_config_or_a_config_error(raw: dict[str, Any]) -> None:
    try:
        parse_config(raw, CONFIG)
    except ConfigError as exc:
        assert exc.problems


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=300))
def test_any_text_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(documents)
def test_config_check_exits_0_or_2_on_any_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: dict[str, Any]
) -> None:
    import json

    # TOML's inline tables and arrays are close enough to JSON for scalars we can write
    try:
        text = "\n".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in raw.items())
    except ValueError:
        return
    code, _ = check(tmp_path, text, capsys)
    assert code in (0, 2)


def _toml(value: object) -> str:
    import json
    import math

    if value is None:
        raise ValueError("TOML has no null")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    raise ValueError(type(value).__name__)
