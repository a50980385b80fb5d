"""`make bench-chunk`: time of the structure-aware splitter and the embedded analyzer.

Baseline measured in the same run: a plain fixed-size split of the same text (the least
work any chunker can do), so the ratio shows what structure awareness costs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lexi_maint.config.pipeline import ChunkSettings
from lexi_maint.pipeline.analyze import AnalyzeStage
from lexi_maint.pipeline.chunk import ChunkStage, split_text
from lexi_maint.pipeline.contract import ParsedDocument, SourceFile, Work
from tests.pdfgen import cao_page_text


def best_of(runs: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    text = "\n\f\n".join(cao_page_text(n) for n in range(1, 1001))
    settings = ChunkSettings()
    fixed = best_of(5, lambda: [text[i : i + 4000] for i in range(0, len(text), 4000)])
    structured = best_of(5, lambda: split_text(text, settings))
    source = SourceFile(Path("/bench/doc.pdf"), Path("/bench"), "0" * 64, len(text))
    work = ChunkStage(settings).run(Work(source, ParsedDocument("bench", 1000, text, "pdf")))
    analyzed = best_of(3, lambda: AnalyzeStage().run(work))
    print(f"text: {len(text):,} characters (1,000 generated CAO pages), {len(work.chunks)} chunks")
    print(f"fixed-size split (baseline): {fixed * 1000:8.2f} ms")
    print(
        f"structure-aware split:       {structured * 1000:8.2f} ms  ratio {structured / fixed:.1f}x"
    )
    print(f"embedded analysis:           {analyzed * 1000:8.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
