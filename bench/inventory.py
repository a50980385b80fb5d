"""`python -m bench.inventory`: what a hostile sparse file costs the inventory, before and now.

In one scratch input directory: 7 copies of the samples plus `huge.txt`, a sparse file of
`--size` bytes (default 1 TiB: `truncate -s 1T`). Measured in the same run:

  now        `take_inventory` as every run calls it: stat first, refuse the sparse file by
             its size, hash the rest (cold fingerprint cache), then again with the warm
             cache (what the job unit does after the daemon's preflight);
  baseline   what the old code did per file, a full sha256 read, here of a `--baseline`
             byte prefix of the same sparse file (default 256 MiB; a full TiB took ~14 min),
             scaled to the file's length.

Nothing is asserted; the figures are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lexi_maint.run.inventory import FingerprintCache, discover, take_inventory

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
MAX_BYTES = 200 * 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=2**40)
    parser.add_argument("--baseline", type=int, default=256 * 2**20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lxbench") as scratch:
        root = Path(scratch) / "in"
        root.mkdir()
        for i in range(7):
            for source in sorted(SAMPLES.glob("*.[tp][xd][tf]")):
                shutil.copyfile(source, root / f"c{i}-{source.name}")
        huge = root / "huge.txt"
        with huge.open("wb") as handle:
            handle.truncate(args.size)
        cache = Path(scratch) / "inventory.json"
        files = discover(root, ["*.txt", "*.pdf"])
        cold = _timed(lambda: take_inventory(files, root, MAX_BYTES, FingerprintCache(cache)))
        warm = _timed(lambda: take_inventory(files, root, MAX_BYTES, FingerprintCache(cache)))
        prefix = _timed(lambda: _hash_prefix(huge, args.baseline))
    scaled = prefix * args.size / args.baseline
    print(f"files: {len(files)} (one sparse file of {args.size / 2**30:.0f} GiB)")
    print(f"now, cold cache: {cold * 1000:.1f} ms; warm cache: {warm * 1000:.1f} ms")
    print(f"baseline: full sha256 of {args.baseline / 2**20:.0f} MiB of it: {prefix:.2f} s,"
          f" scaled to the whole file: {scaled:.0f} s")  # fmt: skip
    print(f"ratio baseline / now (cold): {scaled / cold:,.0f}x")


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _hash_prefix(path: Path, length: int) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        left = length
        while left and (block := handle.read(min(1 << 20, left))):
            digest.update(block)
            left -= len(block)


if __name__ == "__main__":
    main()
