"""`lexi-maint run|status|config check` end to end: real processes, real FalkorDB."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.lexi_env import Workspace, copy_samples, lexi_argv, workspace
from tests.pdfgen import (
    make_encrypted_pdf,
    make_image_only_pdf,
    make_many_pages_pdf,
    make_truncated_pdf,
)

pytestmark = pytest.mark.integration


@pytest.fixture()
def ws() -> Iterator[Workspace]:
    with workspace() as w:
        w.write_config()
        yield w


def status(ws: Workspace) -> dict[str, dict[str, Any]]:
    data = ws.status("cao_import")
    assert data["job"] == "cao_import"
    return {Path(d["path"]).name: d for d in data["documents"]}


def test_samples_run_then_rerun_skips_everything_and_changes_nothing(ws: Workspace) -> None:
    names = [p.name for p in copy_samples(ws.input)]
    first = ws.cli("run", "cao_import")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"[{len(names)}/{len(names)}] ✅" in first.stdout
    assert "result: all documents done" in first.stdout
    docs = status(ws)
    assert sorted(docs) == sorted(names)
    assert all(d["status"] == "done" and d["attempts"] == 1 for d in docs.values())
    assert all(d["error"] is None for d in docs.values())
    chunks = sum(int(str(d["chunks"])) for d in docs.values())
    stats = ws.graph_stats()
    assert stats.node_count("Document") == len(names)
    assert stats.node_count("Chunk") == chunks
    assert stats.relationships["HAS_CHUNK"] == chunks
    assert stats.relationships["NEXT"] == chunks - len(names)
    assert stats.relationships["REFERS_TO"] > 0  # "zoals bedoeld in artikel 5" resolved

    second = ws.cli("run", "cao_import")
    assert second.returncode == 0
    assert f"0 to process, {len(names)} unchanged" in second.stdout
    assert ws.graph_stats() == stats
    assert all(d["attempts"] == 1 for d in status(ws).values())

    third = ws.cli("run", "cao_import", "--reprocess")
    assert third.returncode == 0
    assert ws.graph_stats() == stats  # re-import replaces, never duplicates


def test_a_changed_document_replaces_its_old_version(ws: Workspace) -> None:
    doc = ws.input / "cao.txt"
    doc.write_text("Artikel 1 Loon\nHet loon is € 2.000,00.\n\nArtikel 2 Verlof\nZie artikel 1.\n")
    assert ws.cli("run", "cao_import").returncode == 0
    doc.write_text("Artikel 1 Loon\nHet loon is € 2.100,00 per 1 januari 2026.\n")
    result = ws.cli("run", "cao_import")
    assert result.returncode == 0
    assert "1 to process, 0 unchanged" in result.stdout
    rows = ws.graph_query(
        "MATCH (d:Document)-[:HAS_CHUNK]->(c:Chunk) RETURN d.sha256 AS sha, c.text AS text"
    )
    assert len(rows) == 1
    assert "2.100,00" in str(rows[0]["text"])
    assert rows[0]["sha"] == status(ws)["cao.txt"]["sha256"]
    orphans = ws.graph_query("MATCH (c:Chunk) WHERE NOT ()-[:HAS_CHUNK]->(c) RETURN count(c) AS n")
    assert orphans == [{"n": 0}]


def make_bad_inputs(ws: Workspace, outside: Path) -> None:
    (ws.input / "zero.txt").write_bytes(b"")
    make_truncated_pdf(ws.input / "truncated.pdf")
    make_encrypted_pdf(ws.input / "encrypted.pdf", "Artikel 1 Geheim\nVertrouwelijk.")
    make_image_only_pdf(ws.input / "scanned.pdf")
    (ws.input / "junk.txt").write_bytes(bytes(range(256)) * 64)
    (ws.input / "latin1.txt").write_bytes(
        "Artikel 1 Vakantie\nDe werknemer heeft recht op 25 vakantiedagen; "
        "één extra dag na tien jaar, zoals bedoeld in artikel 3.\n".encode("latin-1")
    )
    secret = outside / "secret.txt"
    secret.write_text("not for the batch")
    (ws.input / "escape.txt").symlink_to(secret)
    locked = ws.input / "locked.txt"
    locked.write_text("Artikel 1 Slot\nDit bestand is niet leesbaar.\n")
    locked.chmod(0o000)
    (ws.input / "folder.txt").mkdir()
    make_many_pages_pdf(ws.input / "thousand-pages.pdf", pages=1000)


EXPECTED_ERRORS = {
    "zero.txt": "empty",
    "truncated.pdf": "pdf_corrupt",
    "encrypted.pdf": "pdf_encrypted",
    "scanned.pdf": "pdf_no_text",
    "junk.txt": "binary",
    "escape.txt": "outside_input",
    "locked.txt": "unreadable",
    "folder.txt": "not_a_file",
}


def test_bad_inputs_each_get_their_own_error_and_nothing_done_is_lost(ws: Workspace) -> None:
    samples = [p.name for p in copy_samples(ws.input)]
    outside = ws.root / "outside"
    outside.mkdir()
    assert ws.cli("run", "cao_import").returncode == 0
    before = {n: d["finished_at"] for n, d in status(ws).items()}

    make_bad_inputs(ws, outside)
    # root reads mode-000 files; the run drops that privilege so "unreadable" is real
    result = ws.cli("run", "cao_import", honour_file_modes=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    docs = status(ws)
    for name, error_class in EXPECTED_ERRORS.items():
        doc = docs[name]
        assert doc["status"] == "failed", (name, doc)
        assert doc["error"]["class"] == error_class, (name, doc["error"])
        assert doc["error"]["message"], name
    assert docs["latin1.txt"]["status"] == "done"
    assert any("cp1252" in w for w in docs["latin1.txt"]["warnings"])
    assert docs["thousand-pages.pdf"]["status"] == "done"
    assert int(str(docs["thousand-pages.pdf"]["chunks"])) > 100
    for name in samples:  # nothing done is lost or redone
        assert docs[name]["status"] == "done"
        assert docs[name]["finished_at"] == before[name]
    assert ws.graph_stats().node_count("Document") == len(samples) + 2


def test_sigkill_of_the_whole_run_then_rerun_leaves_no_duplicates(ws: Workspace) -> None:
    copy_samples(ws.input, copies=8)  # 48 documents
    with workspace() as ref:
        copy_samples(ref.input, copies=8)
        ref.write_config()
        assert ref.cli("run", "cao_import").returncode == 0
        expected = ref.graph_stats()

    proc = subprocess.Popen(
        lexi_argv(ws.config, "run", "cao_import", "--progress", "lines"),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    tree = psutil.Process(proc.pid)
    done_lines = 0
    children: list[psutil.Process] = []
    for line in proc.stdout:
        if "✅" in line:
            done_lines += 1
            children = tree.children(recursive=True)
        if done_lines >= 5:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"processes outlived the killed run: {alive}"

    rows = status(ws)
    assert 5 <= sum(1 for d in rows.values() if d["status"] == "done") < 48
    rerun = ws.cli("run", "cao_import")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert all(d["status"] == "done" for d in status(ws).values())
    assert ws.graph_stats() == expected


def test_broken_config_lists_every_problem_and_exits_2(ws: Workspace) -> None:
    ws.config.write_text(
        'state_dir = "state"\n[jobs.cao_import]\nworkers = "many"\ncolour = 1\n'
        "[jobs.cao_import.chunk]\nmin_chars = 10\nmax_chars = 5\n"
    )
    result = ws.cli("config", "check")
    assert result.returncode == 2
    assert "3 problems" in result.stderr or "4 problems" in result.stderr
    for fragment in (
        "jobs.cao_import.input: missing (required)",
        "jobs.cao_import.workers: must be an integer, got a string",
        "jobs.cao_import.colour: unknown key",
        "jobs.cao_import.chunk.min_chars: must be smaller than max_chars",
    ):
        assert f"{ws.config}: {fragment}" in result.stderr
    assert not ws.state.exists()  # a bad config touches no state


def test_usage_errors_exit_2_with_a_clear_message(ws: Workspace) -> None:
    unknown = ws.cli("run", "nope")
    assert unknown.returncode == 2
    assert "no job named 'nope'" in unknown.stderr
    ws.input.rmdir()
    missing = ws.cli("run", "cao_import")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert ws.cli("--help").returncode == 0
    for command in (["run"], ["status"], ["config", "check"], ["graph", "query"]):
        assert ws.cli(*command, "--help").returncode == 0, command


def test_a_second_run_on_the_same_state_is_refused(ws: Workspace) -> None:
    copy_samples(ws.input, copies=3)
    first = subprocess.Popen(
        lexi_argv(ws.config, "run", "cao_import", "--workers", "1"),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert first.stdout is not None
    first.stdout.readline()  # the run has its lock once it printed its plan
    first.send_signal(signal.SIGSTOP)  # keep it holding the lock however slow the second start
    try:
        second = ws.cli("run", "cao_import")
    finally:
        first.send_signal(signal.SIGCONT)
    first.wait(timeout=300)
    first.stdout.close()
    assert second.returncode == 2
    assert "another lexi-maint run holds" in second.stderr
    assert first.returncode == 0


def test_sigterm_cancels_cleanly(ws: Workspace) -> None:
    copy_samples(ws.input, copies=10)
    proc = subprocess.Popen(
        lexi_argv(ws.config, "run", "cao_import", "--workers", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if "✅" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err
    rows = status(ws)
    assert not any(d["status"] == "running" for d in rows.values())
    time.sleep(0)  # the ledger is consistent right away: no running rows remain
