"""Issue 13: a daemon run's embedded graph server in its own unit, started before the job
unit, told to the job unit, and stopped after it whatever happened (fake systemd)."""

from __future__ import annotations

import threading
from pathlib import Path

from lexi_maint.config import parse_config
from lexi_maint.errors import ExitCode
from lexi_maint.lifecycle.executor import RunRequest
from lexi_maint.lifecycle.machine import Phase
from lexi_maint.state import GRAPH_UNIT_ENV
from lexi_maint.systemd.fake import FakeSystemd
from tests.unit.lifecycle.test_lifecycle import SERVICE, exec_argv, fake, make_config, make_executor

GRAPH = "lexi-graph-run1.service"
JOB = "lexi-pipeline-run1-1.service"


def props_of(systemd: FakeSystemd, unit: str) -> dict[str, object]:
    return {p.name: p.value for p in systemd.properties[unit]}


def environment(systemd: FakeSystemd, unit: str) -> list[str]:
    value = props_of(systemd, unit)["Environment"]
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), value
    return [str(v) for v in value]


def run(tmp_path: Path, systemd: FakeSystemd) -> tuple[int, str]:
    executor, _, _ = make_executor(tmp_path, systemd)
    result = executor.execute(RunRequest("run1", "j"), threading.Event())
    return result.exit_code, result.message


def test_the_graph_unit_has_the_plans_caps_and_the_job_unit_attaches_to_it(
    tmp_path: Path,
) -> None:
    systemd = fake()
    assert run(tmp_path, systemd)[0] == ExitCode.OK
    graph = props_of(systemd, GRAPH)
    # no history, no documents: (32 MiB empty server + 64 MiB graph serve) × 1.25
    assert (graph["MemoryMax"], graph["MemoryHigh"]) == (120 * 2**20, 105 * 2**20)
    assert (graph["Type"], graph["Restart"], graph["Slice"]) == (
        "notify", "on-failure", "lexi-batch.slice")  # fmt: skip
    assert exec_argv({p.name: p for p in systemd.properties[GRAPH]})[-2:] == ["graph", "serve"]
    assert f"{GRAPH_UNIT_ENV}={GRAPH}" in environment(systemd, JOB)
    calls = [c for c in systemd.calls if c[0] != "status"]
    assert calls.index(("start_transient", GRAPH)) < calls.index(("start_transient", JOB))
    assert calls.index(("unref", JOB)) < calls.index(("stop", GRAPH)) < calls.index(
        ("start", SERVICE))  # fmt: skip
    assert systemd.units[GRAPH].active_state == "inactive"


def test_the_graph_unit_is_stopped_when_the_job_unit_fails_to_start(tmp_path: Path) -> None:
    systemd = fake()
    systemd.fail_on = {f"start_transient:{JOB}"}
    code, message = run(tmp_path, systemd)
    assert code == ExitCode.UNAVAILABLE and "start_transient" in message
    assert ("stop", GRAPH) in systemd.calls
    assert systemd.units[GRAPH].active_state == "inactive"
    assert systemd.units[SERVICE].active_state == "active"


def test_a_graph_unit_that_does_not_start_fails_the_run_without_a_job_unit(
    tmp_path: Path,
) -> None:
    systemd = fake()
    systemd.fail_on = {f"start_transient:{GRAPH}"}
    executor, _, _ = make_executor(tmp_path, systemd)
    result = executor.execute(RunRequest("run1", "j"), threading.Event())
    assert (result.phase, result.exit_code) == (Phase.FAILED, ExitCode.UNAVAILABLE)
    assert JOB not in systemd.properties
    assert systemd.units[SERVICE].active_state == "active"


def test_a_stale_graph_unit_is_stopped_before_the_run_starts_its_own(tmp_path: Path) -> None:
    systemd = fake()
    systemd.add_service("lexi-graph-old.service")  # left by a run that could not stop it
    assert run(tmp_path, systemd)[0] == ExitCode.OK
    calls = [c for c in systemd.calls if c[0] != "status"]
    assert calls.index(("stop", "lexi-graph-old.service")) < calls.index(
        ("start_transient", GRAPH))  # fmt: skip


def test_a_graph_store_run_elsewhere_has_no_graph_unit(tmp_path: Path) -> None:
    make_config(tmp_path)  # the input folder
    raw = {
        "state_dir": str(tmp_path / "state"),
        "daemon": {"poll_interval": 0.001},
        "graph": {"backend": "memgraph"},
        "jobs": {"j": {"input": "docs", "workers": 4}},
    }
    config = parse_config(raw, tmp_path / "lexi.toml")
    systemd = fake()
    executor, _, _ = make_executor(tmp_path, systemd, config=config)
    result = executor.execute(RunRequest("run1", "j"), threading.Event())
    assert result.exit_code == ExitCode.OK, result.message
    assert GRAPH not in systemd.properties
    assert not any(GRAPH_UNIT_ENV in e for e in environment(systemd, JOB))
