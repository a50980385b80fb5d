"""`make bench-graph`: graph import speed, batched UNWIND against one statement per row.

The 49-document batch (copies of samples/, as `make bench-memory` uses) is parsed, chunked
and analysed in-process by the embedded stages; then, on one embedded FalkorDB server and
in the same run, each mode imports all 49 documents into its own empty graph:

  batched    the production path: one query per document, every list sent whole to
             UNWIND (FalkorGraphStore.write_document);
  per-row    the same Cypher with one row per statement: one statement per node and per
             relationship (the Memgraph store's plan with batch_size = 1, sent to FalkorDB
             statement by statement).

Rows are the nodes and relationships the import creates (counted in the graph afterwards;
both modes must produce the same counts). The modes alternate over `--repeat` rounds; the
median is reported. Timings depend on the machine and its load: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lexi_maint.config.pipeline import ChunkSettings, ParseSettings
from lexi_maint.graph import cypher
from lexi_maint.graph.falkordb import FalkorGraphStore
from lexi_maint.graph.falkorserver import FalkorServer
from lexi_maint.graph.model import GraphDocument, GraphStats
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage
from lexi_maint.pipeline.contract import SourceFile, Work
from lexi_maint.pipeline.graphdoc import build_graph_document
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.run.inventory import fingerprint

REPO = Path(__file__).resolve().parents[1]
Importer = Callable[[FalkorGraphStore, GraphDocument], None]


def build_documents(samples: Path, count: int, workdir: Path) -> list[GraphDocument]:
    """`count` copies of the samples, through parse, chunk and analyze."""
    sources = sorted(p for p in samples.iterdir() if p.suffix in (".txt", ".pdf"))
    workdir.mkdir(parents=True, exist_ok=True)
    stages = (ParseStage(ParseSettings()), ChunkStage(ChunkSettings()), AnalyzeStage())
    docs = []
    for i in range(count):
        source = sources[i % len(sources)]
        path = Path(shutil.copyfile(source, workdir / f"copy-{i:04d}-{source.name}"))
        found = fingerprint(path, workdir, 2**30)
        work = Work(source=SourceFile(path, workdir, found.sha256, found.size))
        for stage in stages:
            work = stage.run(work)
        docs.append(build_graph_document(work))
    return docs


def import_batched(store: FalkorGraphStore, doc: GraphDocument) -> None:
    store.write_document(doc)


def import_per_row(store: FalkorGraphStore, doc: GraphDocument) -> None:
    path = {"path": doc.path}
    store.query(cypher.MERGE_DOCUMENT, {**path, "document": dict(doc.document)})
    store.query(cypher.FALKORDB_DELETE_CHUNKS, path)
    for statement in cypher.write_plan(doc, cypher.FALKORDB, batch_size=1):
        store.query(statement.text, statement.params)


def statements_per_row(docs: Sequence[GraphDocument]) -> int:
    return sum(2 + len(cypher.write_plan(doc, cypher.FALKORDB, batch_size=1)) for doc in docs)


def rows_in(stats: GraphStats) -> int:
    return sum(stats.nodes.values()) + sum(stats.relationships.values())


def timed_import(
    server: FalkorServer, graph: str, docs: Sequence[GraphDocument], importer: Importer
) -> tuple[float, GraphStats]:
    store = FalkorGraphStore(server.socket_path, graph)
    try:
        store.ensure_schema()
        began = time.perf_counter()
        for doc in docs:
            importer(store, doc)
        seconds = time.perf_counter() - began
        stats = store.stats()
        store.query("MATCH (n) DETACH DELETE n")
    finally:
        store.close()
    return seconds, stats


def run(docs: Sequence[GraphDocument], repeat: int, state: Path) -> dict[str, list[float]]:
    modes: dict[str, Importer] = {"batched": import_batched, "per-row": import_per_row}
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    counts: dict[str, GraphStats] = {}
    with FalkorServer(state) as server:
        for round_ in range(repeat):
            order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
            for name in order:
                took, stats = timed_import(server, f"bench_{name}_{round_}", docs, modes[name])
                seconds[name].append(took)
                if counts.setdefault(name, stats) != stats:
                    raise SystemExit(f"{name}: round {round_} counted {stats}, not {counts[name]}")
    if counts["batched"] != counts["per-row"]:
        raise SystemExit(f"the modes disagree: {counts['batched']} != {counts['per-row']}")
    seconds["rows"] = [float(rows_in(counts["batched"]))]
    return seconds


def report(docs: Sequence[GraphDocument], result: dict[str, list[float]], repeat: int) -> None:
    rows = int(result["rows"][0])
    batched = statistics.median(result["batched"])
    per_row = statistics.median(result["per-row"])
    best_batched, best_per_row = min(result["batched"]), min(result["per-row"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"documents {len(docs)}, rows (nodes + relationships) {rows}, rounds {repeat}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load}")
    print()
    print("| mode | statements | seconds (median) | rows/s (median) | rows/s (best) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| batched UNWIND, one query per document | {len(docs)} | {batched:.3f} | "
          f"{rows / batched:,.0f} | {rows / best_batched:,.0f} |")  # fmt: skip
    print(f"| one statement per node / relationship | {statements_per_row(docs)} | "
          f"{per_row:.3f} | {rows / per_row:,.0f} | {rows / best_per_row:,.0f} |")  # fmt: skip
    print()
    print(f"batched / per-row: {per_row / batched:.1f}x the rows per second (median), "
          f"{best_per_row / best_batched:.1f}x (best)")  # fmt: skip
    print("all rounds (s): " + "; ".join(
        f"{name} " + " ".join(f"{s:.3f}" for s in result[name]) for name in ("batched", "per-row")
    ))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=49)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lxg", dir="/tmp") as tmp:  # short socket path
        base = Path(tmp)
        began = time.perf_counter()
        docs = build_documents(REPO / "samples", args.documents, base / "input")
        print(f"built {len(docs)} documents in {time.perf_counter() - began:.1f} s", flush=True)
        result = run(docs, args.repeat, base / "state")
    report(docs, result, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
