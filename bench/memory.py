"""`make bench-memory`: peak memory of the whole process tree of `lexi-maint run`.

Cases, each in a fresh state directory, in one benchmark run:
  49 documents (copies of samples/), 490 documents, and one 1,000-page PDF, embedded stages;
  49 and 490 documents with the LLM stages on (`[llm] provider = "deepseek"` against the
  test server, no simulated latency; each copy of a samples/ text file gets its own first
  line, so no two documents send the same requests).
A 199 MiB text file of one line (issue 10's hostile input, just under the default
parse.max_bytes), embedded stages: the worker's peak as it reports it to the ledger (target
<= 300 MB) against the largest worker peak of the 49-document run in the same benchmark.
Prints the figures, the ratio 490/49 (target <= 1.10) and the 1,000-page peak
(target <= 300 MB); for the LLM case the pipeline (runner + workers) is measured apart from
the graph server (the embedded FalkorDB keeps the whole graph in memory, so it grows with
the data by design): pipeline ratio 490/49 (target <= 1.10), and the graph server's memory
per 1,000 chunks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.llm import test_server
from bench.treemem import TreeRun, run_measured
from tests.bigtext import MIB, make_one_line_txt
from tests.llm_server import API_KEY
from tests.pdfgen import make_many_pages_pdf

REPO = Path(__file__).resolve().parents[1]
MB = 10**6


def make_copies(samples: Path, target: Path, count: int) -> None:
    target.mkdir(parents=True)
    sources = sorted(p for p in samples.iterdir() if p.suffix in (".txt", ".pdf"))
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copyfile(source, target / f"copy-{i:04d}-{source.name}")


def make_unique_texts(samples: Path, target: Path, count: int) -> None:
    target.mkdir(parents=True)
    sources = sorted(p for p in samples.iterdir() if p.suffix == ".txt")
    for i in range(count):
        source = sources[i % len(sources)]
        text = source.read_text(encoding="utf-8")
        (target / f"copy-{i:04d}-{source.name}").write_text(f"Kopie {i}\n\n{text}")


def write_config(root: Path, input_dir: Path, workers: int, llm: str = "") -> Path:
    config = root / "bench.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n\n{llm}\n'
        f"[jobs.bench]\n"
        f'input = "{input_dir}"\n'
        f"workers = {workers}\n"
    )
    return config


def llm_section(root: Path, url: str) -> str:
    key = root / "api-key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    return f'[llm]\nprovider = "deepseek"\nbase_url = "{url}"\napi_key_file = "{key}"\n'


def chunks_in_ledger(config: Path) -> int:
    status = subprocess.run(
        [sys.executable, "-m", "lexi_maint", "--config", str(config), "status", "bench", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return sum(int(d["chunks"] or 0) for d in json.loads(status.stdout)["documents"])


def worker_peaks(config: Path) -> list[int]:
    """Each document's worker peak (bytes) as the ledger has it."""
    status = subprocess.run(
        [sys.executable, "-m", "lexi_maint", "--config", str(config), "status", "bench", "--json"],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    return [int(d["peak_rss"]) for d in json.loads(status.stdout)["documents"] if d["peak_rss"]]


def run_one_line_case(base: Path, small_worker_peak: int) -> bool:
    """The 199 MiB one-line TXT; True when its worker stays within 300 MB."""
    root = base / "one-line"
    (root / "input").mkdir(parents=True)
    make_one_line_txt(root / "input" / "one-line.txt", 199 * MIB)
    run_case("199 MiB one-line TXT", root, root / "input", 1)
    [peak] = worker_peaks(root / "bench.toml")
    print(f"199 MiB one-line TXT: worker peak {peak / MB:.1f} MB (target <= 300 MB); the largest"
          f" worker of the small run {small_worker_peak / MB:.1f} MB:"
          f" ratio {peak / small_worker_peak:.2f}")  # fmt: skip
    return peak <= 300 * MB


def run_case(label: str, root: Path, input_dir: Path, workers: int, llm: str = "") -> TreeRun:
    config = write_config(root, input_dir, workers, llm)
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    result = run_measured(argv, cwd=REPO)
    if result.exit_code != 0:
        print(result.stdout[-3000:])
        raise SystemExit(f"{label}: lexi-maint exited with {result.exit_code}")
    print(
        f"{label:<22} {result.seconds:7.1f} s   tree peak {result.peak_tree_rss / MB:7.1f} MB"
        f"   largest process {result.peak_process_rss / MB:7.1f} MB"
        f"   pipeline peak {result.peak_pipeline_rss / MB:6.1f} MB"
        f"   graph server peak {result.peak_graph_rss / MB:6.1f} MB",
        flush=True,
    )
    return result


def run_llm_cases(base: Path, counts: tuple[int, int], workers: int) -> bool:
    """The LLM case at both sizes; True when the pipeline's memory stays flat."""
    results: dict[int, tuple[TreeRun, int]] = {}
    with test_server(1.0, "fixed:0") as server:
        for count in counts:
            root = base / f"llm{count}"
            make_unique_texts(REPO / "samples", root / "input", count)
            run = run_case(f"{count} documents, LLM", root, root / "input", workers,
                           llm_section(root, server.url))  # fmt: skip
            results[count] = (run, chunks_in_ledger(root / "bench.toml"))
    small, large = (results[c][0] for c in counts)
    ratio = large.peak_pipeline_rss / small.peak_pipeline_rss
    print(f"LLM: pipeline peak (runner + workers) ratio {counts[1]}/{counts[0]}: {ratio:.3f}"
          "  (target <= 1.10)")  # fmt: skip
    for count in counts:
        run, chunks = results[count]
        per_thousand = run.last_graph_rss / max(chunks, 1) * 1000
        print(f"LLM, {count} documents: graph server {run.last_graph_rss / MB:.1f} MB at the end"
              f" for {chunks} chunks = {per_thousand / MB:.2f} MB per 1,000 chunks"
              " (its resident memory includes its start-up size)")  # fmt: skip
    (run_s, chunks_s), (run_l, chunks_l) = (results[c] for c in counts)
    growth = (run_l.last_graph_rss - run_s.last_graph_rss) / max(chunks_l - chunks_s, 1) * 1000
    print(f"LLM: the graph server grows by {growth / MB:.2f} MB per 1,000 chunks"
          f" (from {counts[0]} to {counts[1]} documents)")  # fmt: skip
    return ratio <= 1.10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=49)
    parser.add_argument("--large", type=int, default=490)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM case")
    parser.add_argument("--no-one-line", action="store_true", help="skip the 199 MiB TXT")
    parser.add_argument("--only-one-line", action="store_true", help="only the 199 MiB TXT")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-") as tmp:
        base = Path(tmp)
        results = {}
        for count in (args.small,) if args.only_one_line else (args.small, args.large):
            root = base / f"n{count}"
            make_copies(REPO / "samples", root / "input", count)
            results[count] = run_case(f"{count} documents", root, root / "input", args.workers)
        small_peak = max(worker_peaks(base / f"n{args.small}" / "bench.toml"))
        one_line_ok = args.no_one_line or run_one_line_case(base, small_peak)
        if args.only_one_line:
            print("targets met" if one_line_ok else "TARGETS MISSED")
            return 0 if one_line_ok else 1
        pdf_root = base / "pdf"
        (pdf_root / "input").mkdir(parents=True)
        make_many_pages_pdf(pdf_root / "input" / "big.pdf", pages=args.pages)
        big = run_case(f"{args.pages}-page PDF", pdf_root, pdf_root / "input", args.workers)
        llm_flat = args.no_llm or run_llm_cases(base, (args.small, args.large), args.workers)
    ratio = results[args.large].peak_tree_rss / results[args.small].peak_tree_rss
    print(f"ratio {args.large}/{args.small} documents (tree peak): {ratio:.3f}  (target <= 1.10)")
    print(f"{args.pages}-page PDF tree peak: {big.peak_tree_rss / MB:.1f} MB  (target <= 300 MB)")
    ok = ratio <= 1.10 and big.peak_tree_rss <= 300 * MB and llm_flat and one_line_ok
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
