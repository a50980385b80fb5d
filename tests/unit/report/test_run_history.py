"""`lexi-maint runs`: the ledger's run history, what the daemon adds to it, how it reads."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lexi_maint.cli.main import main
from lexi_maint.daemon.api import Submit, parse_request
from lexi_maint.daemon.client import submit_trigger
from lexi_maint.daemon.commands import list_json
from lexi_maint.errors import ApiError
from lexi_maint.report.history import render_runs, runs_json
from lexi_maint.run.ledger import Ledger

JOBS = frozenset({"cao_import"})


@pytest.fixture()
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path / "state" / "ledger.sqlite3")


def test_a_foreground_run_and_a_daemon_run_in_the_history(ledger: Ledger) -> None:
    ledger.start_run("cao_import", "fg-1", 1, "foreground")
    counts = {"total": 3, "processed": 3, "done": 2, "failed": 1, "unchanged": 0}
    ledger.finish_run("cao_import", "fg-1", "finished", counts, 1)
    ledger.start_run("cao_import", "d-2", 2)  # the job unit: the daemon adds the rest
    ledger.finish_run("cao_import", "d-2", "finished", {"done": 3, "failed": 0, "unchanged": 0}, 0)
    ledger.record_daemon_run("cao_import", "d-2", status="done", started_at=0.0, exit_status=0,
                             trigger="timer", service_downtime=42.5)  # fmt: skip
    ledger.record_daemon_run("cao_import", "refused-3", status="failed", started_at=1e10,
                             exit_status=2, trigger="operator", service_downtime=None)  # fmt: skip
    runs = ledger.runs("cao_import")
    assert [r.run_id for r in runs] == ["refused-3", "d-2", "fg-1"]
    refused, daemon, foreground = runs
    assert (daemon.status, daemon.exit_status, daemon.trigger, daemon.service_downtime) == (
        "finished", 0, "timer", 42.5)  # fmt: skip  # the pipeline's own status is kept
    assert (refused.status, refused.exit_status, refused.summary) == ("failed", 2, {})
    assert foreground.trigger == "foreground" and foreground.exit_status == 1
    assert [r.run_id for r in ledger.runs(limit=1)] == ["refused-3"]
    assert ledger.runs("other") == []

    data = runs_json(runs)
    assert data["schema_version"] == 1
    fg = data["runs"][2]
    assert fg["counts"] == {"total": 3, "processed": 3, "done": 2, "failed": 1, "unchanged": 0}
    assert fg["started_at"].endswith("+00:00") and fg["duration_seconds"] >= 0
    assert data["runs"][1]["service_downtime_seconds"] == 42.5
    assert data["runs"][0]["counts"] is None

    lines = render_runs(runs).splitlines()
    assert lines[0].split() == ["started", "(UTC)", "run", "status", "took", "done", "failed",
                                "unchanged", "exit", "cost", "downtime", "units",
                                "by"]  # fmt: skip
    assert lines[2].split()[2:] == ["d-2", "finished", "0", "s", "3", "0", "0", "0", "–", "42",
                                    "s", "–", "timer"]  # fmt: skip
    assert lines[1].split()[3:] == ["failed", "0", "s", "–", "–", "–", "2", "–", "–", "–",
                                    "operator"]  # fmt: skip
    assert lines[3].endswith("foreground")


def test_a_version_3_ledger_gains_the_history_columns(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger.open(path).close()
    conn = sqlite3.connect(path)
    for column in ("exit_status", "trigger", "service_downtime"):
        conn.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    conn.execute("ALTER TABLE documents DROP COLUMN peak_own")  # schema 5's
    conn.execute("INSERT INTO runs (run_id, job, pid, status, started_at) VALUES ('old', 'j', 1,"
                 " 'finished', 1.0)")  # fmt: skip
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with Ledger.open(path) as ledger:
        (old,) = ledger.runs()
    assert (old.run_id, old.trigger, old.exit_status, old.service_downtime) == (
        "old",
        "",
        None,
        None,
    )


def test_runs_on_a_state_dir_without_a_ledger_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    config = tmp_path / "c.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "s"}"\n[jobs.cao_import]\ninput = "{tmp_path / "in"}"\n'
    )
    assert main(["runs", "--config", str(config)]) == 0
    assert capsys.readouterr().out == f"no runs yet in {tmp_path / 's'}\n"
    assert main(["runs", "cao_import", "--json", "--config", str(config)]) == 0
    assert '"runs": []' in capsys.readouterr().out
    assert not (tmp_path / "s").exists()
    assert main(["runs", "nope", "--config", str(config)]) == 2


def test_what_started_a_submission() -> None:
    assert submit_trigger({"TRIGGER_UNIT": "lexi-batch@cao_import.timer"}) == "timer"
    assert submit_trigger({"INVOCATION_ID": "x"}) == "operator"  # systemctl start, or a shell
    line = b'{"op": "submit", "job": "cao_import", "trigger": "timer"}'
    assert parse_request(line, JOBS) == Submit("cao_import", False, False, "timer")
    by_hand = parse_request(b'{"op": "submit", "job": "cao_import"}', JOBS)
    assert isinstance(by_hand, Submit) and by_hand.trigger == "operator"
    with pytest.raises(ApiError, match="trigger must be one of timer, operator"):
        parse_request(b'{"op": "submit", "job": "cao_import", "trigger": "cron"}', JOBS)


def test_list_json_has_iso_times_and_a_schema_version() -> None:
    data = list_json([{"run_id": "r", "submitted_at": 0.0, "started_at": None, "finished_at": 1.5}])
    assert data == {"schema_version": 1, "runs": [{"run_id": "r", "submitted_at":
                    "1970-01-01T00:00:00+00:00", "started_at": None,
                    "finished_at": "1970-01-01T00:00:01+00:00"}]}  # fmt: skip


def test_the_daemon_adds_its_part_to_the_history_and_writes_the_downtime(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from lexi_maint.config import load_config
    from lexi_maint.daemon.main import record_history
    from lexi_maint.daemon.runs import RunRecord
    from lexi_maint.lifecycle.machine import Phase

    (tmp_path / "in").mkdir()
    (tmp_path / "prom").mkdir()
    path = tmp_path / "c.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "s"}"\n[metrics]\ntextfile_dir = "{tmp_path / "prom"}"\n'
        f'[jobs.cao_import]\ninput = "{tmp_path / "in"}"\n'
    )
    config = load_config(path)
    run = RunRecord("r1", "cao_import", False, phase=Phase.DONE, exit_code=0, started_at=5.0,
                    trigger="timer")  # fmt: skip
    record_history(config, run, 12.0)  # no ledger yet: none is created as root
    assert not (tmp_path / "s").exists()
    Ledger.open(tmp_path / "s" / "ledger.sqlite3").close()
    record_history(config, run, 12.0)
    with Ledger.open(tmp_path / "s" / "ledger.sqlite3") as ledger:
        (row,) = ledger.runs()
    assert (row.run_id, row.trigger, row.exit_status, row.service_downtime) == (
        "r1",
        "timer",
        0,
        12,
    )
    text = (tmp_path / "prom" / "lexi-maintd-cao_import.prom").read_text()
    (family,) = text_string_to_metric_families(text)
    assert family.samples[0].value == 12.0


def test_a_run_split_by_oom_kills_is_one_row_with_the_whole_runs_counts(ledger: Ledger) -> None:
    """Issue 12: three job units of one daemon run (two OOM-killed); each unit's summary
    counts only its own documents, the row counts them all."""
    from lexi_maint.errors import ErrorClass
    from lexi_maint.pipeline.contract import Failure, Success
    from lexi_maint.run.plan import Found, plan

    found = [Found(f"/in/{n}.txt", n, 1) for n in ("a", "b", "c", "huge", "old")]
    ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=2))
    ledger.mark_running("j", "/in/old.txt", "earlier")
    ledger.record("j", "/in/old.txt", Success(1, {}, None))  # done by an earlier run
    ok = Success(2, {}, None)
    ledger.start_run("j", "r", 1)  # unit 1: the runner outlives the OOM stop
    for path, outcome in (("a", ok), ("huge", Failure(ErrorClass.KILLED, "SIGKILL", True))):
        ledger.mark_running("j", f"/in/{path}.txt", "r")
        ledger.record("j", f"/in/{path}.txt", outcome)
    ledger.mark_running("j", "/in/b.txt", "r")
    ledger.finish_run("j", "r", "cancelled", {})  # b is interrupted: attempt given back
    ledger.start_run("j", "r", 2)  # unit 2: the retry, killed with its runner
    ledger.mark_running("j", "/in/huge.txt", "r")
    ledger.close_attempts("j", "r", oom_unit="lexi-pipeline-r-2.service")  # the daemon
    ledger.start_run("j", "r", 3)  # unit 3 does the rest
    for path in ("b", "c"):
        ledger.mark_running("j", f"/in/{path}.txt", "r")
        ledger.record("j", f"/in/{path}.txt", ok)
    unit3 = {"total": 5, "processed": 2, "done": 2, "failed": 0, "unchanged": 2, "seconds": 1.0}
    ledger.finish_run("j", "r", "finished", unit3, 1)
    ledger.record_daemon_run("j", "r", status="done", started_at=0.0, exit_status=1,
                             trigger="operator", service_downtime=30.0,
                             job_units=("oom-kill", "oom-kill", "exit-code"))  # fmt: skip
    (run,) = ledger.runs("j")
    assert run.status == "finished" and run.summary["units"] == 3
    counts = runs_json([run])["runs"][0]["counts"]
    assert counts == {"total": 5, "processed": 4, "done": 3, "failed": 1, "unchanged": 1}
    assert runs_json([run])["runs"][0]["job_units"] == ["oom-kill", "oom-kill", "exit-code"]
    cells = render_runs([run]).splitlines()[1].split()
    assert cells[6:9] == ["3", "1", "1"] and cells[-4:] == ["3", "(2", "OOM-killed)", "operator"]


def test_a_run_whose_last_unit_died_gets_the_daemons_status_and_counts(ledger: Ledger) -> None:
    from lexi_maint.run.plan import Found, plan

    found = [Found("/in/huge.txt", "h", 1)]
    ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=1))
    ledger.start_run("j", "r", 1)
    ledger.mark_running("j", "/in/huge.txt", "r")  # the unit and its runner die here
    ledger.close_attempts("j", "r", oom_unit="lexi-pipeline-r-1.service")
    ledger.record_daemon_run("j", "r", status="failed", started_at=0.0, exit_status=3,
                             trigger="timer", service_downtime=5.0,
                             job_units=("oom-kill",))  # fmt: skip
    (run,) = ledger.runs("j")
    assert (run.status, run.exit_status) == ("failed", 3)
    assert (run.summary["done"], run.summary["failed"], run.summary["processed"]) == (0, 1, 1)


def test_a_damaged_run_summary_does_not_stop_the_daemon_recording(ledger: Ledger) -> None:
    ledger.start_run("j", "r", 1)
    conn = sqlite3.connect(ledger.path)
    conn.execute("UPDATE runs SET summary = 'not json' WHERE run_id = 'r'")
    conn.commit()
    conn.close()
    ledger.record_daemon_run("j", "r", status="failed", started_at=0.0, exit_status=3,
                             trigger="timer", service_downtime=None,
                             job_units=("oom-kill",))  # fmt: skip
    (run,) = ledger.runs("j")
    assert (run.status, run.summary["job_units"], run.summary["done"]) == (
        "failed",
        ["oom-kill"],
        0,
    )
