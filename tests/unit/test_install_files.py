"""`make install`'s file steps write units, the PATH wrapper and the sysusers file whose paths
follow PREFIX and CONFDIR (run here into temporary directories: these steps need no root)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = ("lexi-maintd.service", "lexi-maintd.socket", "lexi-batch@.service", "lexi-notify@.service",
         "lexi-batch@.timer", "lexi-batch.slice")  # fmt: skip


def make(*args: str) -> None:
    subprocess.run(["make", "-s", "-C", str(REPO), *args], check=True, capture_output=True)


@pytest.mark.allow_subprocess("make")
def test_units_follow_prefix_and_confdir(tmp_path: Path) -> None:
    units = tmp_path / "units"
    make("install-units", f"UNITDIR={units}", "PREFIX=/srv/lm", "CONFDIR=/srv/lm-etc")
    assert sorted(p.name for p in units.iterdir()) == sorted(UNITS)
    daemon = (units / "lexi-maintd.service").read_text()
    assert "ExecStart=/srv/lm/venv/bin/lexi-maint daemon\n" in daemon
    assert "Environment=LEXI_MAINT_CONFIG=/srv/lm-etc/lexi-maint.toml\n" in daemon
    batch = (units / "lexi-batch@.service").read_text()
    assert "ExecStart=/srv/lm/venv/bin/lexi-maint submit %i --wait\n" in batch
    assert "ExecStopPost=/srv/lm/venv/bin/lexi-maint restore-orphaned\n" in batch
    assert "Environment=LEXI_MAINT_CONFIG=/srv/lm-etc/lexi-maint.toml\n" in batch
    for unit in UNITS:
        text = (units / unit).read_text()
        assert "/opt/lexi-maint" not in text and "/etc/lexi-maint" not in text, unit
        assert not re.search(r"@(PREFIX|CONFDIR)@", text), unit
        assert (units / unit).stat().st_mode & 0o777 == 0o644


@pytest.mark.allow_subprocess("make")
def test_default_paths(tmp_path: Path) -> None:
    make("install-units", f"UNITDIR={tmp_path}")
    daemon = (tmp_path / "lexi-maintd.service").read_text()
    assert "ExecStart=/opt/lexi-maint/venv/bin/lexi-maint daemon\n" in daemon
    assert "Environment=LEXI_MAINT_CONFIG=/etc/lexi-maint/lexi-maint.toml\n" in daemon


@pytest.mark.allow_subprocess("make", "lexi-maint")
def test_wrapper_on_path_runs_the_venv_with_the_installed_config(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    (prefix / "venv/bin").mkdir(parents=True)
    program = prefix / "venv/bin/lexi-maint"
    program.write_text('#!/bin/sh\necho "config=$LEXI_MAINT_CONFIG args=$*"\n')
    program.chmod(0o755)
    make("install-bin", f"BINDIR={tmp_path / 'bin'}", f"PREFIX={prefix}", "CONFDIR=/srv/lm-etc")
    wrapper = tmp_path / "bin/lexi-maint"
    assert wrapper.stat().st_mode & 0o777 == 0o755
    env = {"PATH": "/usr/bin:/bin"}
    run = subprocess.run([wrapper, "list", "-x"], env=env, capture_output=True, text=True)
    assert run.stdout == "config=/srv/lm-etc/lexi-maint.toml args=list -x\n"
    env["LEXI_MAINT_CONFIG"] = "/elsewhere.toml"  # an explicit choice still wins
    run = subprocess.run([wrapper, "status"], env=env, capture_output=True, text=True)
    assert run.stdout == "config=/elsewhere.toml args=status\n"


@pytest.mark.allow_subprocess("make")
def test_installed_config_names_the_chosen_paths(tmp_path: Path) -> None:
    make("install-config", f"CONFDIR={tmp_path}", "PREFIX=/srv/lm")
    installed = tmp_path / "lexi-maint.toml"
    text = installed.read_text()
    assert 'program = "/srv/lm/venv/bin/lexi-maint"' in text
    assert f'# api_key_file = "{tmp_path}/deepseek-api-key"' in text
    assert 'user = "lexi-batch"' in text
    assert installed.stat().st_mode & 0o777 == 0o644  # the job user reads it
    installed.write_text("# edited\n")
    make("install-config", f"CONFDIR={tmp_path}")  # never overwritten
    assert installed.read_text() == "# edited\n"


def test_sysusers_file_declares_the_job_user_and_the_socket_group() -> None:
    lines = [
        line.split()
        for line in (REPO / "packaging/lexi-maint.sysusers").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ["g", "lexi-maint", "-"] in lines
    user = next(line for line in lines if line[:2] == ["u", "lexi-batch"])
    assert user[-2:] == ["/nonexistent", "/usr/sbin/nologin"]


def test_the_pipeline_state_is_not_a_state_directory_of_the_root_daemon() -> None:
    """systemd chowns a StateDirectory= back to the service's user (root) at every start of
    the service, recursively: the daemon's restart would take the state from a job's user."""
    daemon = (REPO / "systemd" / "lexi-maintd.service.in").read_text()
    state_dirs = re.findall(r"^StateDirectory=(.*)$", daemon, re.MULTILINE)
    assert state_dirs == ["lexi-maintd"]
    writable = re.findall(r"^ReadWritePaths=(.*)$", daemon, re.MULTILINE)
    assert any("-/var/lib/lexi-maint" in line.split() for line in writable), writable


@pytest.mark.allow_subprocess("make")
def test_uninstall_removes_what_install_wrote_and_keeps_what_shares_the_prefix(
    tmp_path: Path,
) -> None:
    """README's own example puts the configuration under the prefix: uninstall keeps it."""
    prefix, dirs = tmp_path / "srv", {d: tmp_path / d for d in ("units", "bin", "users", "doc")}
    kept = [prefix / "etc/lexi-maint.toml", prefix / "state/ledger.sqlite3"]
    kept.append(prefix / "wheels/x.whl")  # an offline wheelhouse of the operator's
    gone = [prefix / "venv/bin/lexi-maint", prefix / "README.md", dirs["bin"] / "lexi-maint"]
    gone += [dirs["users"] / "lexi-maint.conf", *(dirs["units"] / unit for unit in UNITS)]
    for path in kept + gone:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    where = [f"PREFIX={prefix}", f"CONFDIR={prefix / 'etc'}", f"STATEDIR={prefix / 'state'}"]
    where += [f"UNITDIR={dirs['units']}", f"BINDIR={dirs['bin']}", f"SYSUSERSDIR={dirs['users']}"]
    where += [f"{name}={dirs['doc']}" for name in ("CATALOGDIR", "MANDIR", "COMPLETIONDIR")]
    make("uninstall-files", *where)
    assert [p for p in kept if not p.exists()] == []
    assert [p for p in gone if p.exists()] == []
    assert not (prefix / "venv").exists()
    for path in kept:  # a prefix that held only what install wrote goes too
        path.unlink()
        path.parent.rmdir()
    make("uninstall-files", *where)
    assert not prefix.exists()


@pytest.mark.allow_subprocess("make")
def test_the_installed_catalog_links_the_installed_readme(tmp_path: Path) -> None:
    make("install-catalog", f"CATALOGDIR={tmp_path}", "PREFIX=/srv/lm")
    catalog = tmp_path / "lexi-maint.catalog"
    text = catalog.read_text()
    assert "@PREFIX@" not in text and "/opt/lexi-maint" not in text
    assert text.count("Support: file:///srv/lm/README.md\n") == 7
    assert catalog.stat().st_mode & 0o777 == 0o644
