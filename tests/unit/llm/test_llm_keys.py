from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lexi_maint.config.llm import LlmConfig
from lexi_maint.errors import UsageError
from lexi_maint.llm.keys import CREDENTIAL_NAME, ENV_NAME, REDACTED, api_key, load_api_key

SECRET = "sk-unit-4f3c2b1a0987"


def key_file(tmp_path: Path, mode: int, text: str = SECRET + "\n") -> Path:
    path = tmp_path / "deepseek.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_systemd_credential_wins(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / CREDENTIAL_NAME).write_text("sk-from-credential\n")
    config = LlmConfig(api_key_file=key_file(tmp_path, 0o600))
    key = load_api_key(config, {"CREDENTIALS_DIRECTORY": str(creds), ENV_NAME: "sk-env"})
    assert key.reveal() == "sk-from-credential"
    assert "credential" in key.source


def test_a_credentials_directory_without_our_key_falls_through(tmp_path: Path) -> None:
    config = LlmConfig(api_key_file=key_file(tmp_path, 0o600))
    key = load_api_key(config, {"CREDENTIALS_DIRECTORY": str(tmp_path / "empty")})
    assert key.reveal() == SECRET


def test_a_key_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o644)
    with pytest.raises(UsageError) as info:
        load_api_key(LlmConfig(api_key_file=path), {ENV_NAME: "sk-env"})
    message = str(info.value)
    assert "mode 0644" in message and f"chmod 600 {path}" in message
    assert SECRET not in message


def test_read_only_owner_mode_is_fine(tmp_path: Path) -> None:
    assert load_api_key(LlmConfig(api_key_file=key_file(tmp_path, 0o400)), {}).reveal() == SECRET


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read key file .*No such file"):
        load_api_key(LlmConfig(api_key_file=tmp_path / "nope"), {})


def test_garbage_in_the_key_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = key_file(tmp_path, 0o600, "sk-one sk-two\n")
    with pytest.raises(UsageError) as info:
        load_api_key(LlmConfig(api_key_file=path), {})
    assert "does not hold one API key" in str(info.value)
    assert "sk-one" not in str(info.value)


def test_the_environment_is_the_last_resort() -> None:
    key = load_api_key(LlmConfig(), {ENV_NAME: f"  {SECRET}\n"})
    assert key.reveal() == SECRET and key.source == f"${ENV_NAME}"


def test_no_key_anywhere_names_every_way_to_provide_one() -> None:
    with pytest.raises(UsageError) as info:
        load_api_key(LlmConfig(provider="deepseek"), {})
    message = str(info.value)
    for way in (CREDENTIAL_NAME, "api_key_file", ENV_NAME):
        assert way in message


def test_the_key_hides_itself() -> None:
    key = api_key(SECRET, "test")
    assert SECRET not in repr(key) and SECRET not in str(key) and SECRET not in f"{key}"
    assert repr(key).endswith("…0987 from test)")
    assert key.redact(f"bad key {SECRET}!") == f"bad key {REDACTED}!"
    with pytest.raises(TypeError):
        pickle.dumps(key)
