"""The planner's adapters against real things: a ledger on disk, a real process tree as
the service's gunicorn (its workers' PSS from /proc), and `lexi-maint plan`."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from lexi_maint.cli.main import main
from lexi_maint.config import parse_config
from lexi_maint.config.service import ServiceConfig
from lexi_maint.errors import ErrorClass
from lexi_maint.lifecycle.memplan.gather import ServiceProbe, pending_documents, read_history
from lexi_maint.pipeline.contract import Failure, Success
from lexi_maint.run.ledger import Ledger
from lexi_maint.run.plan import Found, plan
from lexi_maint.systemd.dbus import UnitStatus

pytestmark = pytest.mark.integration
MiB = 2**20

# a "gunicorn" master: forks two workers that each touch 20 MiB, then waits
MASTER = """
import os, sys, time
sys.argv[0] = "gunicorn"
for _ in range(2):
    if os.fork() == 0:
        ballast = bytearray(os.urandom(1)) * (20 * 2**20)
        time.sleep(120)
        os._exit(0)
time.sleep(120)
"""


@pytest.fixture
def master() -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", MASTER, "gunicorn-test"])
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 20
    while len(parent.children()) < 2 or any(
        c.memory_info().rss < 20 * MiB for c in parent.children()
    ):
        assert time.monotonic() < deadline, "the test master did not fork its workers"
        time.sleep(0.05)
    yield parent
    for child in parent.children():
        child.kill()
    proc.kill()
    proc.wait()


def test_service_probe_reads_worker_pss_from_the_cgroup(
    master: psutil.Process, tmp_path: Path
) -> None:
    cgroup = tmp_path / "system.slice" / "lexi.service"
    cgroup.mkdir(parents=True)
    pids = [master.pid, *(c.pid for c in master.children())]
    (cgroup / "cgroup.procs").write_text("\n".join(map(str, pids)) + "\n")
    (cgroup / "memory.current").write_text(f"{90 * MiB}\n")
    status = UnitStatus("lexi.service", "loaded", "active", "running", "success",
                        "/system.slice/lexi.service", master.pid, 0)  # fmt: skip
    probe = ServiceProbe(ServiceConfig(master_match="gunicorn-test"), root=tmp_path)
    service = probe.read(status)
    assert service is not None
    assert (service.workers, service.source, service.resizable) == (2, "PSS", True)
    assert 20 * MiB <= service.per_worker < 90 * MiB
    assert service.current == 90 * MiB
    other = ServiceProbe(ServiceConfig(master_match="uvicorn"), root=tmp_path).read(status)
    assert other is not None and not other.resizable
    # a worker outside the unit's cgroup is not the unit's
    (cgroup / "cgroup.procs").write_text(f"{master.pid}\n")
    alone = probe.read(status)
    assert alone is not None and alone.workers == 0


def test_history_and_pending_documents_from_a_real_ledger(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in (("a.txt", "aaaa"), ("b.txt", "bbbbbbbb"), ("c.pdf", "c"), ("d.txt", "d")):
        (docs / name).write_text(text)
    config = parse_config({"jobs": {"j": {"input": "docs"}}, "state_dir": "state"},
                          tmp_path / "x.toml")  # fmt: skip
    ledger_path = tmp_path / "state" / "ledger.sqlite3"
    assert read_history(ledger_path, ["j"]).samples == ()  # no ledger: no history, none made
    assert not ledger_path.exists()
    found = [
        Found(str(docs / n), n, (docs / n).stat().st_size) for n in ("a.txt", "b.txt", "c.pdf")
    ]
    with Ledger.open(ledger_path) as ledger:
        ledger.apply_plan("j", found, plan(found, {}, reprocess=False, max_attempts=3))
        ledger.start_run("j", "r1", 1)
        for f in found:
            ledger.mark_running("j", f.path, "r1")
        ledger.record("j", found[0].path, Success(3, {}, 40 * MiB))
        ledger.record("j", found[1].path, Failure(ErrorClass.KILLED, "worker killed", True))
        # measured with its own peak (the plan's figure) and one from before peak_own
        ledger.record("j", found[2].path, Success(5, {}, 60 * MiB, peak_own=12 * MiB))
    history = read_history(ledger_path, config.jobs)
    kinds = sorted((s.kind, s.size, s.peak, s.killed) for s in history.samples)
    assert kinds == [(".pdf", 1, 12 * MiB, False), (".txt", 4, 40 * MiB, False),
                     (".txt", 8, None, True)]  # fmt: skip
    assert history.chunks == 8
    pending = pending_documents(config.jobs["j"], history.records["j"])
    assert sorted((p.kind, p.size, p.killed_before) for p in pending) == [
        (".txt", 1, False), (".txt", 8, True)]  # fmt: skip
    everything = pending_documents(config.jobs["j"], history.records["j"], reprocess=True)
    assert len(everything) == 4


def test_plan_command_prints_the_decision_and_its_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("Artikel 1\n")
    (tmp_path / "x.toml").write_text(
        'state_dir = "state"\n[jobs.j]\ninput = "docs"\nquiesce = "none"\nworkers = 2\n'
    )
    code = main(["--config", str(tmp_path / "x.toml"), "plan", "j"])
    out = capsys.readouterr().out
    assert "job j: quiesce = none: leave " in out, out
    # the runner alone in the job's need; the graph server in its own unit, planned apart
    assert "batch needs 608 MB (1 document, no history, the default: 256 MB per worker × 2" in out
    assert "+ 96 MB runner);" in out, out
    assert "graph server (its own unit): 1 chunks → 32 MB + 64 MB graph serve" in out, out
    assert code == (1 if "refused" in out else 0)
