"""Run a command and sample the resident memory of its whole process tree.

The graph server (the embedded FalkorDB, a `redis-server` process) is also counted apart:
it holds the whole graph in memory, so it grows with the data, while the pipeline (runner
and workers) should not. With `pss=True` each sample also sums the pipeline's PSS (psutil's
`memory_full_info`, from /proc/PID/smaps_rollup: a page shared by several processes counted
once), which costs more per sample than RSS, so callers sample less often (`every`).
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
    peak_pipeline_pss: int = 0  # with pss=True: the largest sum of PSS without the graph server
    peak_pipeline_processes: int = 0  # the most processes seen at once, graph server left out


@dataclass(frozen=True)
class _Sample:
    tree: int  # sum of RSS
    largest: int  # the largest RSS
    graph: int  # RSS of the graph server's processes
    pipeline_pss: int = 0  # sum of PSS without the graph server (pss=True only)
    pipeline_processes: int = 0


def run_measured(
    argv: Sequence[str],
    cwd: Path | None = None,
    *,
    pss: bool = False,
    every: float = SAMPLE_SECONDS,
) -> TreeRun:
    """Run `argv` (stdout and stderr captured together), sampling its tree every `every` s."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak_tree = peak_one = peak_pipeline = peak_graph = last_graph = 0
    peak_pss = peak_processes = 0
    chunks: list[bytes] = []
    import threading

    reader = threading.Thread(
        target=lambda: chunks.append(proc.stdout.read() if proc.stdout else b"")
    )
    reader.start()
    while proc.poll() is None:
        s = _sample(root, pss)
        peak_tree, peak_one = max(peak_tree, s.tree), max(peak_one, s.largest)
        peak_pipeline, peak_graph = max(peak_pipeline, s.tree - s.graph), max(peak_graph, s.graph)
        last_graph = s.graph or last_graph
        peak_pss = max(peak_pss, s.pipeline_pss)
        peak_processes = max(peak_processes, s.pipeline_processes)
        time.sleep(every)
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
        peak_pipeline_pss=peak_pss,
        peak_pipeline_processes=peak_processes,
    )


def _sample(root: psutil.Process, pss: bool) -> _Sample:
    total = largest = graph = pipeline_pss = pipeline = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return _Sample(0, 0, 0)
    for p in processes:
        try:
            name = p.name()
            if pss:
                full = p.memory_full_info()
                rss, own_pss = full.rss, full.pss
            else:
                rss, own_pss = p.memory_info().rss, 0
        except psutil.Error:
            continue  # it ended between the listing and the reading
        total += rss
        largest = max(largest, rss)
        if name.startswith("redis"):  # redis-server and its AOF-rewrite child
            graph += rss
            continue
        pipeline += 1
        pipeline_pss += own_pss
    return _Sample(total, largest, graph, pipeline_pss, pipeline)
