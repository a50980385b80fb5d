"""`status` as the operator reads it, the progress bar's drawing, doctor's extra checks."""

from __future__ import annotations

import io
import os
import stat
import tomllib
from dataclasses import replace
from pathlib import Path

from lexi_maint.cli.doctor import check_api_key, check_metrics, check_program, check_state_dir
from lexi_maint.config import Config, parse_config
from lexi_maint.errors import ErrorClass
from lexi_maint.lifecycle.ownership import ROOT, Owner
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.report.progress import (
    BarReporter,
    LineReporter,
    clip,
    display_width,
    format_summary,
)
from lexi_maint.report.status import SCHEMA_VERSION, render_status, status_header, status_json
from lexi_maint.run.events import DocumentFinished, RunFinished, RunStarted, RunSummary
from lexi_maint.run.ledger_rows import DocumentRecord
from lexi_maint.run.plan import Status

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z


def record(name: str, status: Status, error_class: str | None = None) -> DocumentRecord:
    return DocumentRecord(
        job="j", path=f"/in/{name}", sha256="s", size=1, status=status, attempts=1,
        error_class=error_class, error_message="why" if error_class else None, warnings=(),
        timings={}, peak_rss=None, chunks=None, run_id="r", started_at=T0, finished_at=T0 + 2.5,
    )  # fmt: skip


RECORDS = [
    record("a.txt", Status.DONE),
    record("b.txt", Status.FAILED, ErrorClass.EMPTY.value),
    record("c.txt", Status.FAILED, ErrorClass.INTERRUPTED.value),
    record("d.txt", Status.PENDING),
]


def test_the_header_names_each_count_once_and_interrupted_is_not_failed() -> None:
    header = status_header("j", RECORDS)
    assert header == (
        "job j: 4 documents · ○ 1 pending · ▶ 0 running · ✅ 1 done · ❌ 1 failed"
        " · ⤼ 0 skipped · ⏸ 1 interrupted"
    )
    assert "· ·" not in header
    assert status_header("j", RECORDS[:1]).startswith("job j: 1 document · ")
    assert "interrupted" not in status_header("j", RECORDS[:1])


def test_failed_only_lists_real_failures_and_keeps_the_counts() -> None:
    text = render_status("j", RECORDS, None, failed_only=True)
    rows = text.splitlines()[1:]
    assert len(rows) == 1 and "b.txt" in rows[0] and "empty: why" in rows[0]
    data = status_json("j", RECORDS, None, failed_only=True)
    assert [d["path"] for d in data["documents"]] == ["/in/b.txt"]
    assert data["counts"]["failed"] == 1 and data["counts"]["interrupted"] == 1


def test_a_done_row_shows_the_worker_peak_and_its_own_part() -> None:
    measured = replace(RECORDS[0], peak_rss=42 * 2**20, peak_own=10 * 2**20)
    assert "· peak 42 MiB (own 10 MiB)" in render_status("j", [measured], None)
    older = replace(measured, peak_own=None)  # measured before ledger schema 5
    assert "· peak 42 MiB\n" in render_status("j", [older], None)
    assert status_json("j", [measured], None)["documents"][0]["peak_own"] == 10 * 2**20


def test_status_json_has_a_schema_version_and_iso_timestamps() -> None:
    last_run = {"run_id": "r", "status": "finished", "started_at": T0, "finished_at": None}
    data = status_json("j", RECORDS, last_run)
    assert data["schema_version"] == SCHEMA_VERSION
    doc = data["documents"][2]
    assert doc["state"] == "interrupted" and doc["status"] == "failed"
    assert doc["started_at"] == "2026-11-18T11:06:40+00:00"
    assert doc["finished_at"] == "2026-11-18T11:06:42+00:00"
    assert data["last_run"]["started_at"] == "2026-11-18T11:06:40+00:00"
    assert data["last_run"]["finished_at"] is None


def test_clip_counts_wide_characters() -> None:
    assert display_width("✅3 ❌1") == 7
    line = "████ cao_import: 3/49 ✅3 ❌0 · ETA 2 min"
    assert clip(line, 80) == line
    for room in (10, 20, 30):
        clipped = clip(line, room)
        assert display_width(clipped) <= room
        assert clipped.endswith("…")


def started(queued: int = 4) -> RunStarted:
    return RunStarted("j", "r", total=queued, queued=queued, unchanged=0, exhausted=0,
                      vanished=0, interrupted=0)  # fmt: skip


def finished(n: int, ok: bool = True) -> DocumentFinished:
    outcome = Success(1, {}, None) if ok else Failure(ErrorClass.EMPTY, "zero bytes", False)
    return DocumentFinished(f"/in/{n}.txt", outcome, 1, 0.1, False, done=n, failed=0,
                            finished=n, queued=4, eta_seconds=10.0)  # fmt: skip


SUMMARY = RunSummary(job="j", run_id="r", total=4, processed=4, done=1, failed=0, unchanged=0,
                     exhausted=0, vanished=0, failed_in_ledger=0, seconds=5.0)  # fmt: skip


def test_the_bar_shows_from_the_start_fits_the_width_and_ends_with_a_newline() -> None:
    out = io.StringIO()
    columns = [30]
    bar = BarReporter(out, "cao_import", columns=lambda: columns[0])
    bar(started())
    assert out.getvalue().rsplit("\r\x1b[2K", 1)[1] == "cao_import: 0/4 · starting"
    columns[0] = 22  # no room for the graphic nor the whole text: clipped, 3 columns free
    bar.redraw()
    assert out.getvalue().rsplit("\r\x1b[2K", 1)[1] == "cao_import: 0/4 · …"
    columns[0] = 48
    bar.redraw()
    assert out.getvalue().rsplit("\r\x1b[2K", 1)[1] == "·" * 18 + " cao_import: 0/4 · starting"
    bar(finished(1, ok=False))
    columns[0] = 120
    bar.redraw()
    assert out.getvalue().rsplit("\r\x1b[2K", 1)[1].endswith("cao_import: 1/4 ✅1 ❌0 · ETA 10 s")
    bar(RunFinished(SUMMARY))
    text = out.getvalue()
    assert text.endswith("result: all documents done\n")
    assert "❌ 1.txt empty: zero bytes" in text


def test_an_interrupted_run_summary_says_so() -> None:
    text = format_summary(replace(SUMMARY, done=1, failed=1, signal="SIGINT"))
    assert text.endswith("result: interrupted by SIGINT: 2 documents not processed;"
                         " the next run continues with them")  # fmt: skip


def test_a_reader_that_went_away_does_not_stop_the_reporter() -> None:
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as stream:
        reporter = LineReporter(stream)
        reporter(started())  # EPIPE: swallowed, stream pointed at /dev/null
        reporter(finished(1))


def config_for(tmp_path: Path, extra: str = "") -> Config:
    raw = f'state_dir = "{tmp_path / "state"}"\n[jobs.j]\ninput = "{tmp_path}"\n{extra}'
    return parse_config(tomllib.loads(raw), tmp_path / "c.toml")


def test_doctor_state_dir_check(tmp_path: Path) -> None:
    assert check_state_dir(tmp_path).ok
    missing = check_state_dir(tmp_path / "a" / "b")
    assert missing.ok and "will be created in" in missing.detail
    (tmp_path / "file").write_text("")
    blocked = check_state_dir(tmp_path / "file" / "state")
    assert not blocked.ok and "cannot write in" in blocked.detail
    assert not (tmp_path / "a").exists()


def test_doctor_program_check(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert not check_program(config).ok
    program = tmp_path / "lexi-maint"
    program.write_text("#!/bin/sh\n")
    config = replace(config, daemon=replace(config.daemon, program=program))
    assert "not executable" in check_program(config).detail
    program.chmod(0o755)
    assert check_program(config).ok


def test_doctor_api_key_check(tmp_path: Path) -> None:
    assert check_api_key(config_for(tmp_path)).ok  # no LLM: no key needed
    config = config_for(tmp_path, '[llm]\nprovider = "deepseek"\n')
    missing = check_api_key(config, environ={})
    assert not missing.ok and "no API key" in missing.detail
    found = check_api_key(config, environ={"DEEPSEEK_API_KEY": "sk-abcdef0123456789"})
    assert found.ok and found.detail == "found in $DEEPSEEK_API_KEY"
    assert "sk-" not in found.detail


def test_doctor_checks_the_key_file_the_daemon_hands_over(tmp_path: Path) -> None:
    # [daemon] api_key_file only (the README's server setup): found, whatever the environment
    key = tmp_path / "deepseek-api-key"
    key.write_text("sk-abcdef0123456789\n")
    key.chmod(0o600)
    daemon = f'[llm]\nprovider = "deepseek"\n[daemon]\napi_key_file = "{key}"\n'
    found = check_api_key(config_for(tmp_path, daemon), environ={})
    assert found.ok, found.detail
    assert found.detail == (
        f"found in key file {key}, handed to the job unit as the credential deepseek-api-key"
    )
    key.chmod(0o644)
    loose = check_api_key(config_for(tmp_path, daemon), environ={"DEEPSEEK_API_KEY": "sk-x1234567"})
    assert not loose.ok and str(key) in loose.detail, loose.detail


def test_doctor_metrics_check(tmp_path: Path) -> None:
    assert check_metrics(config_for(tmp_path)).detail == "off (no [metrics] textfile_dir)"
    good = check_metrics(config_for(tmp_path, f'[metrics]\ntextfile_dir = "{tmp_path}"\n'))
    assert good.ok and good.detail == f"{tmp_path} (every 30 s during a run)"
    bad = check_metrics(config_for(tmp_path, f'[metrics]\ntextfile_dir = "{tmp_path / "no"}"\n'))
    assert not bad.ok and "cannot write in" in bad.detail


def test_doctor_metrics_check_names_a_job_user_that_cannot_write(tmp_path: Path) -> None:
    # the job unit writes the run's file as its user (nobody: a user every host has)
    directory = tmp_path / "textfiles"
    directory.mkdir(mode=0o755)
    jobs = f'[metrics]\ntextfile_dir = "{directory}"\n[jobs.j.limits]\nuser = "nobody"\n'
    if os.geteuid() == 0:  # the owner's bits (root's) do not apply to nobody
        denied = check_metrics(config_for(tmp_path, jobs))
        assert not denied.ok and "job user nobody cannot write in" in denied.detail, denied
    directory.chmod(0o777)
    assert check_metrics(config_for(tmp_path, jobs)).ok


def test_create_permission_follows_the_first_matching_class() -> None:
    user = Owner("batch", 990, 990, frozenset({990, 50}))

    def st(uid: int, gid: int, mode: int) -> os.stat_result:
        return os.stat_result((stat.S_IFDIR | mode, 0, 0, 2, uid, gid, 0, 0, 0, 0))

    assert user.can_create_in(st(990, 0, 0o700))
    assert not user.can_create_in(st(990, 0, 0o577))  # the owner's bits, not other's
    assert user.can_create_in(st(0, 50, 0o770))
    assert not user.can_create_in(st(0, 50, 0o757))  # the group's bits, not other's
    assert user.can_create_in(st(0, 0, 0o773)) and not user.can_create_in(st(0, 0, 0o775))
    assert ROOT.can_create_in(st(0, 0, 0o500))
