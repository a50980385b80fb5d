"""One test per CLI friction of issue 12 that needs no real graph or systemd."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from lexi_maint.cli.main import _report, build_parser, main
from lexi_maint.config import CONFIG_ENV
from lexi_maint.graph.falkorserver import ServerLayout
from lexi_maint.run.ledger import Ledger
from lexi_maint.state import StatePaths


def write_config(tmp_path: Path, extra: str = "", state: str = "state") -> Path:
    (tmp_path / "in").mkdir(exist_ok=True)
    config = tmp_path / "lexi.toml"
    config.write_text(
        f'state_dir = "{tmp_path / state}"\n[jobs.cao_import]\ninput = "{tmp_path / "in"}"\n{extra}'
    )
    return config


def subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *subparsers(sub)]
    return found


def test_config_is_accepted_before_and_after_the_command(tmp_path: Path) -> None:
    parser = build_parser()
    for argv in (
        ["--config", "a.toml", "run", "job"],
        ["run", "job", "--config", "a.toml"],
        ["graph", "query", "--config", "a.toml", "MATCH (n) RETURN n"],
        ["--config", "a.toml", "config", "check"],
    ):
        assert parser.parse_args(argv).config == "a.toml", argv
    assert parser.parse_args(["status", "job"]).config is None
    assert parser.parse_args(["status", "job", "-v"]).verbose is True


def test_every_command_has_exit_codes_in_its_epilog_and_help_for_every_argument() -> None:
    parser = build_parser()
    assert "exit status:" in (parser.epilog or "")
    for sub in subparsers(parser):
        assert "exit status" in (sub.epilog or ""), sub.prog
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{sub.prog}: {action.dest} has no help"


def test_run_id_is_accepted_but_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "j", "--run-id", "r1"]).run_id == "r1"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--help"])
    out = capsys.readouterr().out
    assert "--run-id" not in out
    assert "exit status: 0 all documents done" in out


def test_config_check_counts_in_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--config", str(write_config(tmp_path))]) == 0
    assert "· 1 job\n" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("state_dir = 5\n")
    assert main(["--config", str(bad), "config", "check"]) == 2
    assert "configuration invalid (1 problem):" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "origin"),
    [
        (None, "the default path; $LEXI_MAINT_CONFIG is not set"),
        ("/nowhere/x.toml", "named by $LEXI_MAINT_CONFIG"),
    ],
)
def test_a_missing_config_file_says_where_its_path_came_from(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: str | None,
    origin: str,
) -> None:
    if env is None:
        monkeypatch.delenv(CONFIG_ENV, raising=False)
    else:
        monkeypatch.setenv(CONFIG_ENV, env)
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"not found ({origin})" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["status", "verify"])
def test_a_read_of_a_job_that_never_ran_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    config = write_config(tmp_path, state="mistyped-state")
    assert main([command, "cao_import", "--config", str(config)]) == 0
    assert (
        capsys.readouterr().out == f"no runs yet for cao_import in {tmp_path / 'mistyped-state'}\n"
    )
    if command == "status":
        assert main(["status", "cao_import", "--json", "--config", str(config)]) == 0
        assert '"documents": []' in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "lexi.toml"]


def test_graph_reads_without_a_stored_graph_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(write_config(tmp_path))
    assert main(["graph", "stats", "--config", config]) == 0
    assert "no graph yet in" in capsys.readouterr().out
    assert main(["graph", "query", "MATCH (n) RETURN n", "--config", config]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and "no graph yet in" in captured.err
    assert not (tmp_path / "state").exists()


def test_verify_of_a_ledger_without_a_stored_graph_creates_no_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, state="mistyped-state")
    # a ledger without a stored graph is compared with an empty graph, not a new one
    Ledger.open(StatePaths(tmp_path / "mistyped-state").ledger).close()
    assert main(["verify", "cao_import", "--config", str(config)]) == 0
    assert "ledger and graph agree" in capsys.readouterr().out
    assert not ServerLayout.under(tmp_path / "mistyped-state").root.exists()


def test_an_os_error_is_one_line_and_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("")
    config = write_config(tmp_path, state="afile/state")  # state_dir under a regular file
    assert main(["run", "cao_import", "--config", str(config), "--progress", "lines"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("lexi-maint: ") and str(tmp_path / "afile" / "state") in err
    assert len(err.splitlines()) == 1
    # an OS error that no lower layer translated is mapped the same way
    assert _report(PermissionError(13, "Permission denied", "/srv/x")) == 3
    assert capsys.readouterr().err == "lexi-maint: cannot use /srv/x: Permission denied\n"


def test_a_foreground_run_with_an_unknown_user_stops_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = '[jobs.cao_import.limits]\nuser = "no-such-user-h12"\n'
    config = write_config(tmp_path, extra)
    assert main(["run", "cao_import", "--config", str(config)]) == 2
    assert "job user 'no-such-user-h12' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_status_failed_without_a_job_is_refused_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert main(["status", "--failed", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "status --failed needs a JOB" in err and len(err.splitlines()) == 1
