"""Run a command and sample the resident memory of its whole process tree.

The graph server (the embedded FalkorDB, a `redis-server` process) is also counted apart:
it holds the whole graph in memory, so it grows with the data, while the pipeline (runner
and workers) should not.
"""

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
    peak_pipeline_rss: int = 0  # the largest sum of RSS without the graph server
    peak_graph_rss: int = 0  # the graph server's largest RSS (all its processes)
    last_graph_rss: int = 0  # the graph server's RSS in the last sample that saw it


def run_measured(argv: Sequence[str], cwd: Path | None = None) -> TreeRun:
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak_tree = peak_one = peak_pipeline = peak_graph = last_graph = 0
    chunks: list[bytes] = []
    import threading

    reader = threading.Thread(
        target=lambda: chunks.append(proc.stdout.read() if proc.stdout else b"")
    )
    reader.start()
    while proc.poll() is None:
        tree, one, graph = _sample(root)
        peak_tree, peak_one = max(peak_tree, tree), max(peak_one, one)
        peak_pipeline, peak_graph = max(peak_pipeline, tree - graph), max(peak_graph, graph)
        last_graph = graph or last_graph
        time.sleep(SAMPLE_SECONDS)
    reader.join()
    return TreeRun(
        exit_code=proc.returncode,
        seconds=time.monotonic() - started,
        peak_tree_rss=peak_tree,
        peak_process_rss=peak_one,
        stdout=b"".join(chunks).decode("utf-8", "replace"),
        peak_pipeline_rss=peak_pipeline,
        peak_graph_rss=peak_graph,
        last_graph_rss=last_graph,
    )


def _sample(root: psutil.Process) -> tuple[int, int, int]:
    """(sum of RSS, the largest RSS, RSS of the graph server's processes)."""
    total = largest = graph = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0
    for p in processes:
        try:
            rss = p.memory_info().rss
            name = p.name()
        except psutil.Error:
            continue
        total += rss
        largest = max(largest, rss)
        if name.startswith("redis"):  # redis-server and its AOF-rewrite child
            graph += rss
    return total, largest, graph
