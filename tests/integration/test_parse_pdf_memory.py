"""Peak memory of parsing a 1,000-page PDF, measured in a fresh Python process.

The peak is VmHWM from /proc/self/status: it starts afresh at exec. `ru_maxrss` does not:
Linux carries it over from the forked pytest process, so it would report pytest's size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pdfgen import make_many_pages_pdf

REPO = Path(__file__).resolve().parents[2]
TARGET_MIB = 300  # the project's budget for the whole process tree on a 1,000-page PDF

CHILD = """
import json, sys, time
from pathlib import Path

def high_water_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")

from lexi_maint.pipeline.contract import SourceFile, Work
from lexi_maint.pipeline.parse import ParseStage
from lexi_maint.config.pipeline import ParseSettings

path = Path(sys.argv[1])
before = high_water_kib()
started = time.monotonic()
work = Work(SourceFile(path=path, input_root=path.parent, sha256="0" * 64, size=0))
parsed = ParseStage(ParseSettings()).run(work).require_parsed()
print(json.dumps({
    "pages": parsed.pages,
    "chars": len(parsed.text),
    "seconds": time.monotonic() - started,
    "before_kib": before,
    "peak_kib": high_water_kib(),
}))
"""


@pytest.mark.integration
def test_thousand_page_pdf_stays_within_the_memory_budget(tmp_path: Path) -> None:
    pdf = make_many_pages_pdf(tmp_path / "lang.pdf", pages=1000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(pdf)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout)
    peak_mib = report["peak_kib"] / 1024
    growth_mib = (report["peak_kib"] - report["before_kib"]) / 1024
    print(f"1,000-page PDF: peak RSS {peak_mib:.1f} MiB (+{growth_mib:.1f} MiB), {report}")
    assert report["pages"] == 1000
    assert report["chars"] > 500_000
    assert peak_mib <= TARGET_MIB
    # Text of 1,000 pages is under 1 MB; parsing must not hold the whole document's objects.
    assert growth_mib <= 40
