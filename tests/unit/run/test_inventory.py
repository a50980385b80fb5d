"""Inventory: sizes and types judged before any byte is read; hashes cached by file identity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lexi_maint.config import JobConfig
from lexi_maint.config.pipeline import ParseSettings
from lexi_maint.errors import UsageError
from lexi_maint.lifecycle.preflight import check_input
from lexi_maint.run.inventory import (
    FingerprintCache,
    discover,
    fingerprint,
    inventory_summary,
    take_inventory,
)
from lexi_maint.state import StatePaths

MAX = 200 * 2**20


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    path = tmp_path / "in"
    path.mkdir()
    return path


def test_a_terabyte_sparse_file_is_refused_by_its_size_without_being_read(root: Path) -> None:
    huge = root / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(2**40)
    cache = FingerprintCache(None)
    found = fingerprint(huge, root, MAX, cache)
    assert (found.sha256, found.size, cache.hashed) == ("", 2**40, 0)
    assert "larger than the parse limit" in found.problem


def test_a_sparse_file_under_the_limit_is_refused_as_sparse(root: Path) -> None:
    holes = root / "holes.txt"
    with holes.open("wb") as handle:
        handle.write(b"Artikel 1\n")
        handle.truncate(50 * 2**20)
    found = fingerprint(holes, root, MAX)
    assert found.sha256 == "" and found.problem.startswith("sparse file: 50.0 MiB long")


def test_a_fifo_is_refused_without_opening_it(root: Path) -> None:
    os.mkfifo(root / "pipe.txt")  # opening it for reading would block
    found = fingerprint(root / "pipe.txt", root, MAX)
    assert found.sha256 == "" and found.problem == "not a regular file (a named pipe)"


def test_a_symlink_to_a_device_outside_the_input_is_refused(root: Path) -> None:
    (root / "zero.txt").symlink_to("/dev/zero")
    found = fingerprint(root / "zero.txt", root, MAX)
    assert found.sha256 == "" and found.problem == "outside the input directory"


def test_an_empty_file_and_a_directory_are_named(root: Path) -> None:
    (root / "empty.txt").write_bytes(b"")
    (root / "dir.txt").mkdir()
    assert fingerprint(root / "empty.txt", root, MAX).problem == "file is empty (0 bytes)"
    assert fingerprint(root / "dir.txt", root, MAX).problem == "not a regular file (a directory)"


def test_a_file_is_hashed_once_until_it_changes(root: Path, tmp_path: Path) -> None:
    doc = root / "a.txt"
    doc.write_text("Artikel 1 Loon\n")
    path = StatePaths(tmp_path / "state").inventory("j")
    first = FingerprintCache(path)
    [found] = take_inventory([doc], root, MAX, first)
    assert first.hashed == 1 and len(found.sha256) == 64
    assert path.stat().st_mode & 0o777 == 0o600
    again = FingerprintCache(path)
    assert take_inventory([doc], root, MAX, again) == [found] and again.hashed == 0
    doc.write_text("Artikel 1 Loon, gewijzigd\n")
    changed = FingerprintCache(path)
    [new] = take_inventory([doc], root, MAX, changed)
    assert changed.hashed == 1 and new.sha256 != found.sha256


def test_an_unreadable_cache_means_hashing_again_not_failing(root: Path, tmp_path: Path) -> None:
    doc = root / "a.txt"
    doc.write_text("x")
    path = StatePaths(tmp_path / "state").inventory("j")
    path.parent.mkdir(parents=True)
    path.write_text('{"bogus": 1}')
    cache = FingerprintCache(path)
    [found] = take_inventory([doc], root, MAX, cache)
    assert cache.hashed == 1 and found.sha256


def test_a_pattern_that_cannot_be_listed_is_a_usage_error(root: Path) -> None:
    with pytest.raises(UsageError, match="cannot be listed"):
        discover(root, ["/etc/*"])


def test_preflight_fingerprints_and_names_what_will_be_refused(root: Path, tmp_path: Path) -> None:
    (root / "a.txt").write_text("Artikel 1\n")
    os.mkfifo(root / "pipe.txt")
    job = JobConfig(name="j", input=root, parse=ParseSettings(max_bytes=MAX))
    check = check_input(job, tmp_path / "state")
    assert check.ok, check.detail
    assert "2 files match" in check.detail and "1 hashed" in check.detail
    assert "1 will be refused (pipe.txt: not a regular file (a named pipe))" in check.detail
    assert "0 hashed" in inventory_summary(job, tmp_path / "state")  # the run only stats
