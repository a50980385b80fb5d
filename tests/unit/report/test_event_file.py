"""The root daemon reads a job-owned run event file without trusting it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lexi_maint.report.reporters import MAX_EVENT_READ, read_events


def test_complete_lines_are_read_and_a_partial_one_waits(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"event": "a"}\n[1, 2]\nnot json\n{"event": "par')
    records, offset = read_events(path, 0)
    assert records == [{"event": "a"}] and offset == len(b'{"event": "a"}\n[1, 2]\nnot json\n')


def test_a_symlink_to_dev_zero_is_not_followed(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.symlink_to("/dev/zero")
    assert read_events(path, 0) == ([], 0)


def test_a_fifo_does_not_block_the_daemon(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    os.mkfifo(path)
    assert read_events(path, 0) == ([], 0)


def test_a_huge_file_is_read_a_bounded_piece_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    line = json.dumps({"event": "x" * 1000}).encode() + b"\n"
    with path.open("wb") as handle:
        handle.write(b"y" * (MAX_EVENT_READ + 10) + b"\n")  # one line longer than a read
        handle.write(line * 3000)
    records, offset = read_events(path, 0)
    assert (records, offset) == ([], MAX_EVENT_READ)  # the overlong line is skipped
    total = 0
    while True:
        records, new = read_events(path, offset)
        if new == offset:
            break
        assert new - offset <= MAX_EVENT_READ
        total += len(records)
        offset = new
    assert total == 3000
