"""The Memgraph password: sources in order, file checks, and never showing it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import UsageError
from lexi_maint.graph.credentials import REDACTED, Credentials, load_credentials, password

SECRET = "s3cr3t pass"


def secret_file(path: Path, text: str = SECRET + "\n", mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_no_password_means_no_authentication(tmp_path: Path) -> None:
    assert load_credentials(MemgraphConfig(), {}) == Credentials("", None)
    assert load_credentials(MemgraphConfig(username="lexi"), {}) == Credentials("lexi", None)


def test_the_password_file_is_read_without_its_newline(tmp_path: Path) -> None:
    config = MemgraphConfig(username="lexi", password_file=secret_file(tmp_path / "pw"))
    credentials = load_credentials(config, {})
    assert credentials.username == "lexi"
    assert credentials.password is not None
    assert credentials.password.reveal() == SECRET  # inner space kept, newline dropped
    assert credentials.password.source == f"password file {tmp_path / 'pw'}"


def test_a_systemd_credential_wins_over_the_password_file(tmp_path: Path) -> None:
    (tmp_path / "creds").mkdir()
    secret_file(tmp_path / "creds" / "memgraph-password", "from-systemd", mode=0o644)
    config = MemgraphConfig(username="lexi", password_file=secret_file(tmp_path / "pw"))
    credentials = load_credentials(config, {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert credentials.password is not None
    assert credentials.password.reveal() == "from-systemd"  # systemd set its mode; not checked
    assert credentials.password.source.startswith("systemd credential ")


def test_a_credentials_directory_without_our_file_falls_back_to_the_file(tmp_path: Path) -> None:
    config = MemgraphConfig(username="lexi", password_file=secret_file(tmp_path / "pw"))
    credentials = load_credentials(config, {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert credentials.password is not None and credentials.password.reveal() == SECRET


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (SECRET, 0o644, r"accessible to group or others \(mode 0644\); run: chmod 600"),
        (SECRET, 0o660, r"mode 0660"),
        ("", 0o600, "is empty"),
        ("\nsecond\n", 0o600, "is empty"),
        ("one\ntwo\n", 0o600, "more than one line"),
        ("x" * 5000, 0o600, "5000 bytes: not a password file"),
    ],
)
def test_unusable_password_files_are_refused_with_a_reason(
    tmp_path: Path, text: str, mode: int, message: str
) -> None:
    config = MemgraphConfig(username="lexi", password_file=secret_file(tmp_path / "pw", text, mode))
    with pytest.raises(UsageError, match=message) as caught:
        load_credentials(config, {})
    assert SECRET not in str(caught.value)


def test_a_missing_password_file_names_the_file(tmp_path: Path) -> None:
    config = MemgraphConfig(username="lexi", password_file=tmp_path / "nope")
    with pytest.raises(UsageError, match=f"cannot read password file {tmp_path / 'nope'}: No such"):
        load_credentials(config, {})


def test_a_password_without_a_username_is_refused(tmp_path: Path) -> None:
    config = MemgraphConfig(password_file=secret_file(tmp_path / "pw"))
    with pytest.raises(UsageError, match="username is not set") as caught:
        load_credentials(config, {})
    assert SECRET not in str(caught.value)


def test_the_password_never_shows_and_is_never_pickled() -> None:
    secret = password(SECRET, "password file /etc/pw")
    credentials = Credentials("lexi", secret)
    for text in (repr(secret), str(secret), repr(credentials), f"{credentials}"):
        assert SECRET not in text
    assert repr(secret) == "Password(from password file /etc/pw)"
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(secret)
    assert credentials.redact(f"auth failed for {SECRET}!") == f"auth failed for {REDACTED}!"
    assert Credentials("", None).redact("nothing to hide") == "nothing to hide"
