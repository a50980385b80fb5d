"""sd_notify, the journal encoding, unit properties, sizes and durations."""

from __future__ import annotations

import logging
import socket
import struct
from pathlib import Path

import pytest

from lexi_maint.config.service import DaemonConfig, JobLimits
from lexi_maint.systemd.journal import JournalHandler, encode_entry, record_fields
from lexi_maint.systemd.notify import Notifier
from lexi_maint.systemd.properties import (
    GraphServerUnit,
    PipelineRun,
    Sandbox,
    UnitProperty,
    graph_properties,
    graph_unit_name,
    pipeline_properties,
    sandbox_properties,
    unit_name,
)
from lexi_maint.units import format_size, parse_duration, parse_size


def test_notify_sends_utf8_that_sdnotify_would_drop(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.ready("cao_import: 14/49 ✅13 ❌1 · ETA 38 min")
    assert server.recv(4096).decode("utf-8") == (
        "READY=1\nSTATUS=cao_import: 14/49 ✅13 ❌1 · ETA 38 min"
    )
    assert notifier.watchdog()
    assert server.recv(4096) == b"WATCHDOG=1"
    server.close()


def test_notify_is_a_no_op_without_a_socket() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.status("x") is False


def test_watchdog_interval_only_for_this_process() -> None:
    assert Notifier({"WATCHDOG_USEC": "60000000"}).watchdog_usec == 60_000_000
    assert Notifier({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}).watchdog_usec is None


def test_journal_entry_encoding_handles_newlines() -> None:
    data = encode_entry({"MESSAGE": "two\nlines", "LEXI_JOB": "cao"})
    assert data.startswith(b"MESSAGE\n" + struct.pack("<Q", 9) + b"two\nlines\n")
    assert data.endswith(b"LEXI_JOB=cao\n")


def test_journal_fields_come_from_record_extra() -> None:
    record = logging.LogRecord("x", logging.WARNING, "f.py", 3, "hello", None, None)
    record.lexi_job = "cao_import"
    record.lexi_document = "/srv/a.pdf"
    record.message_id = "abc"
    fields = record_fields(record, "hello", "lexi-maint")
    assert fields["PRIORITY"] == "4"
    assert fields["LEXI_JOB"] == "cao_import" and fields["LEXI_DOCUMENT"] == "/srv/a.pdf"
    assert fields["MESSAGE_ID"] == "abc"
    assert "LEXI_RUN" not in fields


def test_journal_handler_sends_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "journal.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    handler = JournalHandler(path=str(path))
    logger = logging.getLogger("test.journal")
    logger.addHandler(handler)
    logger.warning("doc failed", extra={"lexi_run": "r1"})
    logger.removeHandler(handler)
    handler.close()
    datagram = server.recv(65536)
    assert b"MESSAGE=doc failed\n" in datagram and b"LEXI_RUN=r1\n" in datagram
    server.close()


def test_pipeline_properties_with_user_and_credential() -> None:
    run = PipelineRun("cao_import", "cao_import-20261128T0101-abc", Path("/etc/l.toml"), 2, True)
    limits = JobLimits(memory_high=2**30, memory_max=2 * 2**30, user="lexi-batch")
    daemon = DaemonConfig()
    credentials = (("deepseek-api-key", Path("/etc/lexi-maint/deepseek-api-key")),)
    sandbox = Sandbox(Path("/var/lib/lexi-maint"), (Path("/srv/docs"),), credentials)
    props = {p.name: p for p in pipeline_properties(run, limits, daemon, sandbox)}
    assert unit_name(run) == "lexi-pipeline-cao_import-20261128T0101-abc-1.service"
    assert props["User"].value == "lexi-batch"
    assert props["LoadCredential"].signature == "a(ss)"
    assert props["LoadCredential"].value == [
        ("deepseek-api-key", "/etc/lexi-maint/deepseek-api-key")]  # fmt: skip
    exec_start = props["ExecStart"].value
    assert isinstance(exec_start, list)
    argv = exec_start[0][1]
    assert "--reprocess" in argv
    assert not any("key" in a.lower() for a in argv)  # the secret never on a command line
    assert props["RuntimeMaxUSec"].value == 6 * 3600 * 10**6


def test_the_graph_server_unit_by_value() -> None:
    unit = GraphServerUnit("big-20261201T1000-x", Path("/etc/l.toml"), 105 * 2**20, 120 * 2**20,
                           960.0, "lexi-batch")  # fmt: skip
    sandbox = Sandbox(Path("/var/lib/lexi-maint"), (Path("/srv/docs"),), (("k", Path("/k")),))
    props = values(graph_properties(unit, DaemonConfig(), sandbox))
    program = str(DaemonConfig().program)
    argv = [program, "--config", "/etc/l.toml", "graph", "serve"]
    assert graph_unit_name("big-20261201T1000-x") == "lexi-graph-big-20261201T1000-x.service"
    expected = {
        "Description": [("s", "lexi-maint graph server: run big-20261201T1000-x")],
        "Slice": [("s", "lexi-batch.slice")],  # beside the job unit, under the slice's cap
        "Type": [("s", "notify")],  # started once the server answers PING
        "NotifyAccess": [("s", "main")],
        "ExecStart": [("a(sasb)", [(program, argv, False)])],
        "SyslogIdentifier": [("s", "lexi-graph")],
        "MemoryAccounting": [("b", True)],
        "MemoryHigh": [("t", 105 * 2**20)],
        "MemoryMax": [("t", 120 * 2**20)],
        "MemorySwapMax": [("t", 0)],
        "Restart": [("s", "on-failure")],  # systemd revives a server that died
        "RestartUSec": [("t", 1_000_000)],
        "TimeoutStartUSec": [("t", 960_000_000)],
        "KillMode": [("s", "mixed")],  # SIGTERM to graph serve, which stops redis cleanly
        "Environment": [("as", ["LEXI_MAINT_RUN_ID=big-20261201T1000-x"])],
        "User": [("s", "lexi-batch")],
    }
    assert {k: v for k, v in props.items() if k in expected} == expected
    # the job unit's sandbox, without its credentials: the graph server needs no secret
    assert values(sandbox_properties(sandbox)).items() <= props.items()
    assert set(props) == set(expected) | set(values(sandbox_properties(sandbox)))
    assert "LoadCredential" not in props


def test_a_job_unit_of_a_run_with_a_graph_unit_is_told_its_name() -> None:
    run = PipelineRun("big", "r1", Path("/etc/l.toml"), 2, graph_unit="lexi-graph-r1.service")
    sandbox = Sandbox(Path("/var/lib/lexi-maint"))
    props = values(pipeline_properties(run, JobLimits(), DaemonConfig(), sandbox))
    told = ["LEXI_MAINT_RUN_ID=r1", "LEXI_MAINT_GRAPH_UNIT=lexi-graph-r1.service"]
    assert props["Environment"] == [("as", told)]
    alone = PipelineRun("big", "r1", Path("/etc/l.toml"), 2)
    props = values(pipeline_properties(alone, JobLimits(), DaemonConfig(), sandbox))
    assert props["Environment"] == [("as", ["LEXI_MAINT_RUN_ID=r1"])]


def values(props: list[UnitProperty]) -> dict[str, list[tuple[str, object]]]:
    found: dict[str, list[tuple[str, object]]] = {}
    for prop in props:
        found.setdefault(prop.name, []).append((prop.signature, prop.value))
    return found


def test_the_job_unit_sandbox() -> None:
    sandbox = Sandbox(Path("/var/lib/lexi-maint"), (Path("/srv/lexi/documents/cao"),))
    props = values(sandbox_properties(sandbox))
    assert props["ProtectSystem"] == [("s", "strict")]
    assert props["ReadWritePaths"] == [("as", ["/var/lib/lexi-maint"])]
    assert props["ReadOnlyPaths"] == [("as", ["/srv/lexi/documents/cao"])]
    assert props["ProtectHome"] == [("s", "yes")]
    assert "BindPaths" not in props and "BindReadOnlyPaths" not in props
    assert props["CapabilityBoundingSet"] == [("t", 0)]
    assert props["RestrictNamespaces"] == [("t", 0)]
    assert props["RestrictAddressFamilies"] == [("(bas)", (True, ["AF_UNIX", "AF_INET",
                                                                   "AF_INET6"]))]  # fmt: skip
    assert props["SystemCallFilter"] == [
        ("(bas)", (True, ["@system-service"])),
        ("(bas)", (False, ["@privileged", "@resources"])),
    ]
    assert props["SystemCallArchitectures"] == [("as", ["native"])]
    assert props["UMask"] == [("u", 0o077)]
    for flag in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                 "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups",
                 "ProtectClock", "ProtectHostname", "RestrictSUIDSGID", "LockPersonality",
                 "RestrictRealtime"):  # fmt: skip
        assert props[flag] == [("b", True)], flag


def test_the_metrics_directory_is_writable_where_it_exists() -> None:
    # "-": a missing directory must not keep the job unit from starting (the write is logged)
    sandbox = Sandbox(Path("/var/lib/lexi-maint"), optional_dirs=(Path("/var/lib/prom"),))
    props = values(sandbox_properties(sandbox))
    assert props["ReadWritePaths"] == [("as", ["/var/lib/lexi-maint", "-/var/lib/prom"])]
    home = Sandbox(Path("/var/lib/lexi-maint"), optional_dirs=(Path("/home/ops/prom"),))
    props = values(sandbox_properties(home))
    assert props["ProtectHome"] == [("s", "tmpfs")]
    assert props["BindPaths"] == [("a(ssbt)", [("/home/ops/prom", "/home/ops/prom", True,
                                                0x4000)])]  # fmt: skip


def test_job_paths_below_home_are_bound_back_in() -> None:
    sandbox = Sandbox(Path("/home/lexi/state"), (Path("/root/docs"), Path("/srv/docs")))
    props = values(sandbox_properties(sandbox))
    assert props["ProtectHome"] == [("s", "tmpfs")]
    assert props["BindPaths"] == [("a(ssbt)", [("/home/lexi/state", "/home/lexi/state",
                                                False, 0x4000)])]  # fmt: skip
    assert props["BindReadOnlyPaths"] == [("a(ssbt)", [("/root/docs", "/root/docs", False,
                                                        0x4000)])]  # fmt: skip
    assert "ReadWritePaths" not in props
    assert props["ReadOnlyPaths"] == [("as", ["/srv/docs"])]


@pytest.mark.parametrize(
    ("text", "size"), [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5G", 3 * 2**29), (7, 7)]
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_bad_size_says_how_to_write_one() -> None:
    with pytest.raises(ValueError, match=r"write e\.g\. 512M"):
        parse_size("lots")


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h 30min") == 5400
    assert parse_duration(2.5) == 2.5
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert format_size(512 * 2**20) == "512M"
