"""The README's first command, `make demo`, as a newcomer runs it: the Makefile's own target
on the bundled samples with config/demo.toml (no API key, no database server, no systemd).

It runs in a copy of the files the target uses (mtimes kept, so the venv stamp stays newer
than pyproject.toml and make reuses this venv), so the checkout's own .demo-state/ is never
touched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent


def make_demo(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "demo", f"VENV={VENV}"], cwd=root, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_make_demo_runs_the_main_job_on_the_samples_and_a_rerun_redoes_nothing(
    tmp_path: Path,
) -> None:
    if not (VENV / ".installed").exists():
        pytest.skip(f"{VENV} was not made by the Makefile (no .installed stamp)")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(REPO / name, tmp_path / name)
    for folder in ("config", "samples"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    samples = sorted(p.name for p in (REPO / "samples").iterdir() if p.suffix in (".txt", ".pdf"))

    first = make_demo(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    count = len(samples)
    assert f"{count} documents: {count} to process, 0 unchanged" in first.stdout
    assert f"✅ {count} done, ❌ 0 failed" in first.stdout
    for name in samples:
        assert f"✅ {name}" in first.stdout
    sections = first.stdout.split("== ")
    documents = [json.loads(line) for line in sections[1].splitlines()[1:] if line.strip()]
    assert len(documents) == count and all(d["title"] for d in documents)
    chunks = [json.loads(line) for line in sections[2].splitlines()[1:] if line.strip()]
    assert len(chunks) == count and all(c["chunks"] > 0 for c in chunks)
    terms = [json.loads(line) for line in sections[3].splitlines()[1:] if line.strip()]
    assert terms and all(t["mentions"] > 0 for t in terms)
    assert (tmp_path / ".demo-state").is_dir()

    again = make_demo(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{count} documents: 0 to process, {count} unchanged" in again.stdout
