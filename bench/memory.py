"""`make bench-memory`: peak memory of the whole process tree of `lexi-maint run`.

Cases, each in a fresh state directory, in one benchmark run:
  49 documents (copies of samples/), 490 documents, and one 1,000-page PDF.
Prints the figures and the ratio 490/49 (target <= 1.10) and the 1,000-page peak
(target <= 300 MB).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.treemem import TreeRun, run_measured
from tests.pdfgen import make_many_pages_pdf

REPO = Path(__file__).resolve().parents[1]
MB = 10**6


def make_copies(samples: Path, target: Path, count: int) -> None:
    target.mkdir(parents=True)
    sources = sorted(p for p in samples.iterdir() if p.suffix in (".txt", ".pdf"))
    for i in range(count):
        source = sources[i % len(sources)]
        shutil.copyfile(source, target / f"copy-{i:04d}-{source.name}")


def write_config(root: Path, input_dir: Path, workers: int) -> Path:
    config = root / "bench.toml"
    config.write_text(
        f'state_dir = "{root / "state"}"\n\n'
        f"[jobs.bench]\n"
        f'input = "{input_dir}"\n'
        f"workers = {workers}\n"
    )
    return config


def run_case(label: str, root: Path, input_dir: Path, workers: int) -> TreeRun:
    config = write_config(root, input_dir, workers)
    argv = [sys.executable, "-m", "lexi_maint", "--config", str(config), "run", "bench",
            "--progress", "lines"]  # fmt: skip
    result = run_measured(argv, cwd=REPO)
    if result.exit_code != 0:
        print(result.stdout[-3000:])
        raise SystemExit(f"{label}: lexi-maint exited with {result.exit_code}")
    print(
        f"{label:<22} {result.seconds:7.1f} s   tree peak {result.peak_tree_rss / MB:7.1f} MB"
        f"   largest process {result.peak_process_rss / MB:7.1f} MB",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--small", type=int, default=49)
    parser.add_argument("--large", type=int, default=490)
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lexi-bench-") as tmp:
        base = Path(tmp)
        results = {}
        for count in (args.small, args.large):
            root = base / f"n{count}"
            make_copies(REPO / "samples", root / "input", count)
            results[count] = run_case(f"{count} documents", root, root / "input", args.workers)
        pdf_root = base / "pdf"
        (pdf_root / "input").mkdir(parents=True)
        make_many_pages_pdf(pdf_root / "input" / "big.pdf", pages=args.pages)
        big = run_case(f"{args.pages}-page PDF", pdf_root, pdf_root / "input", args.workers)
    ratio = results[args.large].peak_tree_rss / results[args.small].peak_tree_rss
    print(f"ratio {args.large}/{args.small} documents (tree peak): {ratio:.3f}  (target <= 1.10)")
    print(f"{args.pages}-page PDF tree peak: {big.peak_tree_rss / MB:.1f} MB  (target <= 300 MB)")
    ok = ratio <= 1.10 and big.peak_tree_rss <= 300 * MB
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
