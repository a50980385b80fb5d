"""Hand the pipeline's state directory to the user its job unit runs as.

A job with `[jobs.X.limits] user = "lexi-batch"` runs its unit as that user, so the ledger,
the embedded FalkorDB's files, the LLM cache and the run event files must belong to it.
Root touches them between runs (the daemon marks interrupted runs in the ledger, an operator
runs `lexi-maint status` or `graph stats`), so before every run the daemon gives the tree to
the run's owner: the job's user, or root for a job without one.

Safety, because this runs as root over a directory another user owned a moment ago:
- only lexi-maint's own entries are touched (`lexi_maint.state.ENTRIES`); a state_dir that holds
  anything else is refused rather than handed to a user who could then rename it;
- the walk goes by directory descriptors and never follows a symbolic link (`os.fwalk`,
  `follow_symlinks=False`), so a link planted in the tree cannot redirect a chown to
  /etc or anywhere else;
- the daemon's own records (hold record) live in `[daemon] records_dir`, outside this tree;
- a file with more than one hard link is left alone (logged): lexi-maint never makes hard
  links, and a link to a file elsewhere (a root-owned secret linked in where
  fs.protected_hardlinks=0) must not change owner with the tree.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lexi_maint import state
from lexi_maint.errors import OwnershipError

log = logging.getLogger(__name__)

STATE_DIR_MODE = 0o700  # the owner alone: ledger, graph data and cached answers are private


@dataclass(frozen=True)
class Owner:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]  # every group the user is in, for permission checks

    def can_enter_and_list(self, st: os.stat_result) -> bool:
        """Whether permission bits let this user list a directory (ACLs not considered)."""
        return self._allowed(st, read=True)

    def can_pass_through(self, st: os.stat_result) -> bool:
        """Whether permission bits let this user reach entries below a directory."""
        return self._allowed(st, read=False)

    def can_create_in(self, st: os.stat_result) -> bool:
        """Whether permission bits let this user create files in a directory."""
        return self._allowed(st, read=False, write=True)

    def _allowed(self, st: os.stat_result, *, read: bool, write: bool = False) -> bool:
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            r, w, x = stat.S_IRUSR, stat.S_IWUSR, stat.S_IXUSR
        elif st.st_gid in self.groups:
            r, w, x = stat.S_IRGRP, stat.S_IWGRP, stat.S_IXGRP
        else:
            r, w, x = stat.S_IROTH, stat.S_IWOTH, stat.S_IXOTH
        bits = x | (r if read else 0) | (w if write else 0)
        return st.st_mode & bits == bits


ROOT = Owner("root", 0, 0, frozenset({0}))


def resolve_owner(user: str | None) -> Owner:
    """The account a job unit runs as: `user`, or root when the job names none."""
    if not user:
        return ROOT
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise OwnershipError(
            f"job user {user!r} does not exist (create it: useradd --system {user})"
        ) from None
    groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return Owner(entry.pw_name, entry.pw_uid, entry.pw_gid, groups)


def foreign_entries(names: Iterable[str]) -> list[str]:
    """Entries of a state directory that lexi-maint did not create (pure)."""
    return sorted(n for n in names if n not in state.ENTRIES)


def hand_over(state_dir: Path, owner: Owner) -> int:
    """Give state_dir and lexi-maint's entries in it to `owner`; return how many changed."""
    try:
        state_dir.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
        top = os.lstat(state_dir)
    except OSError as exc:
        raise OwnershipError(f"cannot create state_dir {state_dir}: {exc}") from None
    if stat.S_ISLNK(top.st_mode):
        raise OwnershipError(
            f"state_dir {state_dir} is a symbolic link: set state_dir to the directory itself"
        )
    if not stat.S_ISDIR(top.st_mode):
        raise OwnershipError(f"state_dir {state_dir} is not a directory")
    if (top.st_uid, top.st_gid) != (owner.uid, owner.gid):
        foreign = foreign_entries(os.listdir(state_dir))
        if foreign:
            raise OwnershipError(
                f"state_dir {state_dir} also holds {', '.join(foreign[:5])}"
                f"{' …' if len(foreign) > 5 else ''}: lexi-maint gives a job user only a"
                " directory of its own; point state_dir at a dedicated directory"
            )
    changed = 0
    try:
        dir_fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise OwnershipError(f"cannot open state_dir {state_dir}: {exc}") from None
    try:
        changed += _chown(".", dir_fd, owner)
        mode = stat.S_IMODE(top.st_mode)
        if mode != STATE_DIR_MODE:
            os.chmod(dir_fd, STATE_DIR_MODE)
        for name in sorted(state.ENTRIES):
            changed += _hand_over_entry(name, dir_fd, owner)
    except OSError as exc:
        raise OwnershipError(f"cannot give {state_dir} to {owner.name}: {exc}") from None
    finally:
        os.close(dir_fd)
    return changed


def _hand_over_entry(name: str, dir_fd: int, owner: Owner) -> int:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    changed = _chown(name, dir_fd, owner, st)
    if not stat.S_ISDIR(st.st_mode):
        return changed
    # fwalk opens each directory relative to its parent's descriptor and does not follow
    # links, so the tree it walks is the tree that exists, whatever names are swapped meanwhile
    for _, dirnames, filenames, fd in os.fwalk(name, dir_fd=dir_fd, follow_symlinks=False):
        for entry in (*dirnames, *filenames):
            changed += _chown(entry, fd, owner)
    return changed


def _chown(name: str, dir_fd: int, owner: Owner, st: os.stat_result | None = None) -> int:
    if st is None:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:  # removed while we walked: nothing to give
            return 0
    if (st.st_uid, st.st_gid) == (owner.uid, owner.gid):
        return 0
    if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
        log.warning("state entry %s has %d hard links: not lexi-maint's, left to uid %d",
                    name, st.st_nlink, st.st_uid)  # fmt: skip
        return 0
    os.chown(name, owner.uid, owner.gid, dir_fd=dir_fd, follow_symlinks=False)
    return 1


def become_state_owner(state_dir: Path) -> str | None:
    """Drop root for good and act as the owner of state_dir; return that user's name.

    Root's commands that read or write the state directly (`run`, `status JOB`, `graph`)
    would otherwise leave root-owned files in a tree a job user owns (a ledger created by
    `status` before the job's first run, SQLite side files, FalkorDB's dump), and that job
    would then fail with "attempt to write a readonly database". Nothing happens when not
    root, when state_dir does not exist yet, or when root owns it.
    """
    if os.geteuid() != 0:
        return None
    try:
        st = os.stat(state_dir)
    except OSError:
        return None
    if st.st_uid == 0:
        return None
    try:
        name = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        raise OwnershipError(
            f"state_dir {state_dir} belongs to uid {st.st_uid}, which has no account"
        ) from None
    os.setgroups(os.getgrouplist(name, st.st_gid))
    os.setresgid(st.st_gid, st.st_gid, st.st_gid)
    os.setresuid(st.st_uid, st.st_uid, st.st_uid)
    return name
