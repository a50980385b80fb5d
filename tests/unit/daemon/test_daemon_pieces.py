"""The daemon's request parsing, run queue, peer check, leftovers and hold record."""

from __future__ import annotations

from pathlib import Path

import pytest

from lexi_maint.config.service import ProcessMatcher
from lexi_maint.daemon.api import Cancel, Submit, parse_request
from lexi_maint.daemon.peer import Peer, allowed
from lexi_maint.daemon.runs import RunQueue
from lexi_maint.errors import ApiError
from lexi_maint.lifecycle.hold import HoldStore
from lexi_maint.lifecycle.machine import Phase
from lexi_maint.lifecycle.procs import ProcInfo, cgroup_pids, matches, select_leftovers

JOBS = frozenset({"cao_import"})


def test_requests_name_configured_jobs_only() -> None:
    assert parse_request(b'{"op": "submit", "job": "cao_import", "wait": true}', JOBS) == Submit(
        "cao_import", False, True
    )
    assert parse_request(b'{"op": "cancel", "run": "r-1"}', JOBS) == Cancel("r-1")
    for bad, message in (
        (b'{"op": "submit", "job": "other"}', "no job named 'other'"),
        (b'{"op": "submit", "job": "../etc"}', "job name"),
        (b'{"op": "submit", "job": "cao_import", "input": "/etc"}', "unknown fields"),
        (b'{"op": "submit", "job": "cao_import", "wait": "yes"}', "true or false"),
        (b'{"op": "rm"}', "unknown op"),
        (b"not json", "not JSON"),
        (b'{"op": "cancel", "run": "../x"}', "run id"),
    ):
        with pytest.raises(ApiError, match=message):
            parse_request(bad, JOBS)


def test_one_run_per_job_in_the_queue() -> None:
    runs = RunQueue()
    first, created = runs.submit("cao_import", False)
    again, created_again = runs.submit("cao_import", True)
    assert created and not created_again and again.run_id == first.run_id
    other, _ = runs.submit("other", False)
    taken = runs.take(timeout=0)
    assert taken is not None and taken[0].run_id == first.run_id
    current = runs.current()
    assert current is not None and current.run_id == first.run_id
    cancelled = runs.cancel(other.run_id)
    assert cancelled.phase is Phase.CANCELLED and cancelled.exit_code == 4
    runs.cancel(first.run_id)
    assert taken[1].is_set()  # the running run's cancel event


def test_closing_the_queue_cancels_waiting_and_signals_running() -> None:
    runs = RunQueue()
    running, _ = runs.submit("a", False)
    runs.submit("b", False)
    taken = runs.take(timeout=0)
    assert taken is not None
    _, cancel = taken
    touched = runs.close()
    assert cancel.is_set()
    assert {r.job for r in touched} == {"a", "b"}
    with pytest.raises(RuntimeError, match="stopping"):
        runs.submit("c", False)
    del running


def test_subscribers_get_published_events() -> None:
    runs = RunQueue()
    record, _ = runs.submit("a", False)
    seen: list[dict[str, object]] = []
    runs.subscribe(record.run_id, seen.append)
    runs.publish(record.run_id, {"event": "line", "line": "x"})
    runs.unsubscribe(record.run_id, seen.append)
    runs.publish(record.run_id, {"event": "line", "line": "y"})
    assert seen == [{"event": "line", "line": "x"}]


def test_peer_check() -> None:
    assert allowed(Peer(1, 0, 0, frozenset({0})), None)
    assert allowed(Peer(1, 1000, 1000, frozenset({1000, 997})), 997)
    assert not allowed(Peer(1, 1000, 1000, frozenset({1000})), 997)
    assert not allowed(Peer(1, 1000, 1000, frozenset({1000})), None)


def test_leftovers_by_cgroup_and_matchers_never_by_name_alone() -> None:
    gunicorn = ProcInfo(
        10, "/usr/bin/python3.11", "python3.11 gunicorn app:application", "/srv/app"
    )
    decoy = ProcInfo(11, "/usr/bin/python3.11", "python3.11 -c sleep", "/")
    me = ProcInfo(12, "/usr/bin/python3.11", "python3.11 gunicorn lexi-maint", "/srv/app")
    matcher = ProcessMatcher(exe="/usr/bin/python3.11", cmdline_contains="gunicorn", cwd="/srv/app")
    assert matches(gunicorn, matcher) and not matches(decoy, matcher)
    assert not matches(gunicorn, ProcessMatcher(cwd="/srv/app"))  # no exe/cmdline: never
    chosen = select_leftovers([20, 21, 12], [gunicorn, decoy, me], [matcher], protected={12})
    assert chosen == [10, 20, 21]


def test_cgroup_pids_include_subgroups(tmp_path: Path) -> None:
    base = tmp_path / "system.slice" / "lexi.service"
    (base / "sub").mkdir(parents=True)
    (base / "cgroup.procs").write_text("5\n6\n")
    (base / "sub" / "cgroup.procs").write_text("7\n")
    assert sorted(cgroup_pids("/system.slice/lexi.service", tmp_path)) == [5, 6, 7]
    assert cgroup_pids("", tmp_path) == []
    assert cgroup_pids("/system.slice/gone.service", tmp_path) == []


def test_hold_record_is_durable_and_cleared(tmp_path: Path) -> None:
    holds = HoldStore(tmp_path / "daemon")
    assert holds.load() is None
    hold = holds.record("run1", "cao_import", "lexi.service")
    assert holds.load() == hold
    assert not (tmp_path / "daemon" / "hold.tmp").exists()
    holds.clear()
    assert holds.load() is None
    holds.clear()  # clearing twice is fine
