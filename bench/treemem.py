"""Run a command and sample the resident memory of its whole process tree."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class TreeRun:
    exit_code: int
    seconds: float
    peak_tree_rss: int  # the largest sum of RSS over the command and all its descendants
    peak_process_rss: int  # the largest RSS of any single process in the tree
    stdout: str


def run_measured(argv: Sequence[str], cwd: Path | None = None) -> TreeRun:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak_tree = peak_one = 0
    chunks: list[bytes] = []
    import threading

    reader = threading.Thread(
        target=lambda: chunks.append(proc.stdout.read() if proc.stdout else b"")
    )
    reader.start()
    while proc.poll() is None:
        tree, one = _sample(root)
        peak_tree, peak_one = max(peak_tree, tree), max(peak_one, one)
        time.sleep(SAMPLE_SECONDS)
    reader.join()
    return TreeRun(
        exit_code=proc.returncode,
        seconds=time.monotonic() - started,
        peak_tree_rss=peak_tree,
        peak_process_rss=peak_one,
        stdout=b"".join(chunks).decode("utf-8", "replace"),
    )


def _sample(root: psutil.Process) -> tuple[int, int]:
    total = largest = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for p in processes:
        try:
            rss = p.memory_info().rss
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest
