"""Giving the state directory to a job's user: only lexi-maint's entries, never via a link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lexi_maint.config.llm import LlmConfig
from lexi_maint.errors import OwnershipError
from lexi_maint.graph.falkorserver import ServerLayout
from lexi_maint.lifecycle.ownership import (
    ROOT,
    Owner,
    foreign_entries,
    hand_over,
    resolve_owner,
)
from lexi_maint.state import ENTRIES, StatePaths

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
NOBODY = 65534


def owner_nobody() -> Owner:
    return Owner("nobody", NOBODY, NOBODY, frozenset({NOBODY}))


def fake_stat(uid: int, gid: int, mode: int) -> os.stat_result:
    return os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, uid, gid, 0, 0, 0, 0))


def test_every_entry_the_pipeline_creates_is_known() -> None:
    state = Path("/state")
    made = {
        StatePaths(state).ledger.name,
        StatePaths(state).ledger.name + "-wal",
        StatePaths(state).ledger.name + "-shm",
        StatePaths(state).lock.name,
        ServerLayout.under(state).root.name,
        LlmConfig(state_dir=state / "llm").state_dir.name,
        StatePaths(state).events("r1").parent.name,
    }
    assert made <= ENTRIES


def test_foreign_entries_are_the_ones_lexi_maint_did_not_make() -> None:
    assert foreign_entries(["ledger.sqlite3", "falkordb", "lost+found", "etc"]) == [
        "etc",
        "lost+found",
    ]


def test_permission_bits_decide_who_may_list_a_directory() -> None:
    user = Owner("batch", 1000, 1000, frozenset({1000, 50}))
    assert user.can_enter_and_list(fake_stat(1000, 0, 0o700))
    assert not user.can_enter_and_list(fake_stat(0, 0, 0o750))
    assert user.can_enter_and_list(fake_stat(0, 50, 0o750))
    assert not user.can_enter_and_list(fake_stat(0, 50, 0o740))  # r without x: no entry
    assert user.can_enter_and_list(fake_stat(0, 0, 0o755))
    assert ROOT.can_enter_and_list(fake_stat(1000, 1000, 0o700))
    assert user.can_pass_through(fake_stat(0, 0, 0o711))  # x without r: reach, not list
    assert not user.can_enter_and_list(fake_stat(0, 0, 0o711))
    assert not user.can_pass_through(fake_stat(0, 0, 0o750))


def test_no_user_means_root_and_an_unknown_user_is_named() -> None:
    assert resolve_owner(None) == ROOT and resolve_owner("") == ROOT
    with pytest.raises(OwnershipError, match=r"'no-such-lexi-user' does not exist.*useradd"):
        resolve_owner("no-such-lexi-user")


def make_state(root: Path) -> Path:
    state = root / "state"
    (state / "falkordb" / "appendonlydir").mkdir(parents=True)
    (state / "falkordb" / "appendonlydir" / "a.aof").write_text("x")
    (state / "llm" / "slots").mkdir(parents=True)
    (state / "llm" / "slots" / "0").write_text("")
    (state / "runs").mkdir()
    (state / "runs" / "r1.jsonl").write_text("{}\n")
    (state / "ledger.sqlite3").write_text("")
    (state / "ledger.sqlite3-wal").write_text("")
    os.chmod(state, 0o755)
    return state


@as_root
def test_the_whole_tree_goes_to_the_user_but_not_what_a_link_points_at(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("root's")
    (state / "falkordb" / "escape").symlink_to(outside)
    (state / "llm" / "dir-escape").symlink_to(tmp_path, target_is_directory=True)
    changed = hand_over(state, owner_nobody())
    tree = [state, *state.rglob("*")]
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in tree} == {(NOBODY, NOBODY)}
    assert changed == len(tree)
    assert outside.stat().st_uid == 0 and tmp_path.stat().st_uid == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert hand_over(state, owner_nobody()) == 0  # nothing left to change
    assert hand_over(state, ROOT) == len(tree)  # and back, for a job without a user
    assert {p.lstat().st_uid for p in [state, *state.rglob("*")]} == {0}


@as_root
def test_a_directory_with_other_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    (state / "notes.txt").write_text("an operator's file")
    with pytest.raises(OwnershipError, match=r"also holds notes\.txt.*dedicated directory"):
        hand_over(state, owner_nobody())
    assert {p.lstat().st_uid for p in [state, *state.rglob("*")]} == {0}


@as_root
def test_foreign_files_are_left_alone_when_the_owner_does_not_change(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    (state / "notes.txt").write_text("an operator's file")
    os.chown(state / "notes.txt", NOBODY, NOBODY)
    os.chown(state / "ledger.sqlite3", NOBODY, NOBODY)  # left by a run as another user
    assert hand_over(state, ROOT) == 1
    assert (state / "ledger.sqlite3").stat().st_uid == 0
    assert (state / "notes.txt").stat().st_uid == NOBODY


def test_a_missing_state_dir_is_created_private(tmp_path: Path) -> None:
    me = Owner("me", os.geteuid(), os.getegid(), frozenset({os.getegid()}))
    state = tmp_path / "new" / "state"
    hand_over(state, me)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_state_dir_that_is_a_link_is_refused(tmp_path: Path) -> None:
    me = Owner("me", os.geteuid(), os.getegid(), frozenset({os.getegid()}))
    (tmp_path / "real").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(OwnershipError, match="symbolic link: set state_dir to the directory"):
        hand_over(tmp_path / "state", me)


def _credentials_after_becoming_owner(state: Path, out: Path) -> None:
    from lexi_maint.lifecycle.ownership import become_state_owner

    name = become_state_owner(state)
    (state / "made-by-child").write_text("x")  # as whom does the command create files?
    out.write_text(f"{name} {os.getresuid()} {os.getresgid()}")


@as_root
def test_root_commands_act_as_the_state_owner_and_cannot_go_back(tmp_path: Path) -> None:
    import multiprocessing
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="lexi-owner-"))  # tmp_path's parents are root's 0700
    try:
        base.chmod(0o755)
        state = base / "state"
        state.mkdir()
        os.chown(state, NOBODY, NOBODY)
        out = base / "out"
        out.touch()
        os.chown(out, NOBODY, NOBODY)
        child = multiprocessing.get_context("fork").Process(
            target=_credentials_after_becoming_owner, args=(state, out)
        )
        child.start()
        child.join()
        assert child.exitcode == 0
        n = NOBODY
        assert out.read_text() == f"nobody ({n}, {n}, {n}) ({n}, {n}, {n})"
        assert (state / "made-by-child").stat().st_uid == NOBODY
    finally:
        shutil.rmtree(base)


def test_nothing_changes_when_root_owns_the_state_or_it_is_missing(tmp_path: Path) -> None:
    from lexi_maint.lifecycle.ownership import become_state_owner

    before = os.getresuid()
    assert become_state_owner(tmp_path / "missing") is None
    if os.geteuid() == 0:
        assert become_state_owner(tmp_path) is None  # tmp_path is root's
    assert os.getresuid() == before


@as_root
def test_a_hard_link_to_a_file_elsewhere_keeps_its_owner(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root's secret")
    secret.chmod(0o600)
    os.link(secret, state / "runs" / "planted.jsonl")  # as if fs.protected_hardlinks=0
    hand_over(state, owner_nobody())
    assert secret.stat().st_uid == 0 and (state / "runs" / "planted.jsonl").stat().st_uid == 0
    assert (state / "runs" / "r1.jsonl").stat().st_uid == NOBODY
