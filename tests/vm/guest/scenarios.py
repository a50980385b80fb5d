"""Runs inside the VM (systemd as PID 1): installs lexi-maint and plays the scenarios.

Writes one JSON object per scenario to $OUT/scenarios.json; the host-side tests assert on
it. Each scenario records what it observed, not a verdict, so an assertion failure on the
host shows the real values. Run as: python3 scenarios.py REPO_DIR OUT_DIR
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository copy
from tests.vm.guest.prober import Prober, gunicorn_workers

REPO = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/mnt/host/repo")
OUT = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/mnt/host/out")
HERE = Path(__file__).resolve().parent
LEXI = "/opt/lexi-maint/venv/bin/lexi-maint"
PY = "/opt/lexi-maint/venv/bin/python"
CONFIG = Path("/etc/lexi-maint/lexi-maint.toml")
DOCS = Path("/srv/lexi/documents")
STATE = Path("/var/lib/lexi-maint")  # the pipeline's: handed to the job's user before a run
RECORDS = Path("/var/lib/lexi-maintd")  # the daemon's: root's alone
SECRET = "sk-lexi-vmtest-0123456789"  # a fake API key: must reach the job unit only as a credential
PASSWORD = "memgraph-vmtest-pw-9876"  # a fake Memgraph password: the same
PASSWORD_FILE = Path("/etc/lexi-maint/memgraph-password")
RESULTS: dict[str, dict[str, Any]] = {}


def sh(*argv: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stdout}{proc.stderr}")
    return proc


def log(message: str) -> None:
    print(f"[{time.monotonic():8.1f}] {message}", flush=True)


def show(unit: str, prop: str) -> str:
    return sh("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


def wait_for(what: str, test: Callable[[], bool], timeout: float, step: float = 0.2) -> float:
    started = time.monotonic()
    while not test():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - started


def scenario(name: str) -> Callable[[Callable[[dict[str, Any]], None]], None]:
    def run(body: Callable[[dict[str, Any]], None]) -> None:
        log(f"=== scenario {name}")
        record: dict[str, Any] = {}
        started = time.monotonic()
        try:
            body(record)
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            record["traceback"] = traceback.format_exc()
            record["journal_tail"] = lexi_journal()
            log(record["traceback"])
            log(record["journal_tail"])
        record["seconds"] = round(time.monotonic() - started, 1)
        record["service_active_at_end"] = show("lexi.service", "ActiveState")
        record["decoy_alive_at_end"] = alive(DECOY.pid) if DECOY else None
        RESULTS[name] = record
        (OUT / "scenarios.json").write_text(json.dumps(RESULTS, indent=2))
        log(f"=== {name}: {json.dumps({k: v for k, v in record.items() if k != 'traceback'})}")

    return run


# -- setup -----------------------------------------------------------------------------------

DECOY: subprocess.Popen[bytes] | None = None
ROGUE: subprocess.Popen[bytes] | None = None


def setup() -> dict[str, Any]:
    global DECOY, ROGUE
    record: dict[str, Any] = {}
    work = Path("/root/lexi-maint")
    shutil.copytree(REPO, work)
    started = time.monotonic()
    install = sh(
        "make",
        "-C",
        str(work),
        "install",
        "PYTHON=python3",
        "PIP_OPTS=--no-index --find-links /opt/lexi-maint/wheels --no-build-isolation",
    )
    record["install_seconds"] = round(time.monotonic() - started, 1)
    record["install_rc"] = install.returncode
    record["install_output"] = (install.stdout + install.stderr)[-3000:]
    app = Path("/srv/lexi-app")
    app.mkdir(parents=True)
    for name in ("app.py", "stubborn.py"):
        shutil.copy(HERE / name, app / name)
    shutil.copy(HERE / "lexi.service", "/etc/systemd/system/lexi.service")
    shutil.copy(HERE / "lexi-maint.toml", CONFIG)
    key = Path("/etc/lexi-maint/deepseek-api-key")
    key.write_text(SECRET + "\n")
    key.chmod(0o600)
    PASSWORD_FILE.write_text(PASSWORD + "\n")
    PASSWORD_FILE.chmod(0o600)
    make_documents(work / "samples")
    sh("systemctl", "daemon-reload", check=True)
    sh("systemctl", "start", "lexi.service", check=True)
    wait_for(
        "gunicorn's 4 workers",
        lambda: len(sh("pgrep", "-f", "gunicorn.*8000").stdout.split()) >= 5,
        60,
    )
    record["lexi_workers"] = len(sh("pgrep", "-f", "gunicorn.*8000").stdout.split())
    # processes that must survive (the decoy) and must not (a gunicorn outside the unit)
    DECOY = subprocess.Popen(["/usr/bin/python3.11", "-c", "import time; time.sleep(10**6)"],
                             cwd="/", start_new_session=True)  # fmt: skip
    ROGUE = subprocess.Popen(
        ["/opt/lexi-maint/venv/bin/gunicorn", "--workers", "1", "--bind", "127.0.0.1:8001",
         "app:application"], cwd="/srv/lexi-app", start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # the account the cao_import and big jobs run as ([jobs.X.limits] user)
    sh("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "lexi-batch")
    sh("useradd", "--no-create-home", "outsider")
    sh("useradd", "--no-create-home", "-G", "lexi-maint", "insider")
    sh("systemctl", "start", "lexi-maintd.service", check=True)
    record["daemon_active"] = show("lexi-maintd.service", "ActiveState")
    record["socket_mode"] = oct(os.stat("/run/lexi-maint/api.sock").st_mode & 0o777)
    record["verify"] = sh("systemd-analyze", "verify", *[
        f"/etc/systemd/system/{u}" for u in ("lexi-maintd.service", "lexi-maintd.socket",
        "lexi-batch@.service", "lexi-batch@.timer", "lexi-batch.slice")]).stderr  # fmt: skip
    record["security"] = {
        unit: sh("systemd-analyze", "security", "--no-pager", unit).stdout.strip().splitlines()[-1:]
        for unit in ("lexi-maintd.service", "lexi-batch@cao_import.service")
    }
    return record


def make_documents(samples: Path) -> None:
    sources = sorted(p for p in samples.iterdir() if p.suffix in (".txt", ".pdf"))
    for folder, copies in (("cao", 2), ("big", 8), ("oom", 1)):
        target = DOCS / folder
        target.mkdir(parents=True)
        for i in range(copies):
            for source in sources:
                shutil.copy(source, target / f"c{i}-{source.name}")
    heavy_page_pdf(DOCS / "oom" / "a-huge.pdf")


def heavy_page_pdf(path: Path, lines: int = 300_000) -> None:
    """A 90 KB PDF whose one page holds 900,000 operands and operators (under the parse
    stage's per-page bound of 1,000,000): extracting its text grows a worker by ~190 MB,
    which a job capped at MemoryMax=200M cannot hold beside its runner.
    Every text-only parse bound holds, so only the cgroup can stop it: the kernel's OOM kill."""
    line = b"(Artikel 1 Loon. De werknemer ontvangt het loon zoals bedoeld in artikel 2.) Tj T*\n"
    content = zlib.compress(b"BT /F1 10 Tf 12 TL 72 760 Td\n" + line * lines + b"ET\n", 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    pdf, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
    pdf += trailer % (len(objects) + 1, xref)
    path.write_bytes(bytes(pdf))


# -- helpers for scenarios -------------------------------------------------------------------


def ledger(job: str) -> dict[str, Any]:
    out = sh(LEXI, "status", job, "--json").stdout
    return json.loads(out) if out.strip() else {}


def runs() -> list[dict[str, Any]]:
    out = sh(LEXI, "list").stdout
    return [{"line": line} for line in out.splitlines()]


def pipeline_units() -> list[str]:
    out = sh("systemctl", "list-units", "--all", "--plain", "--no-legend", "lexi-pipeline-*")
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def graph_units() -> list[str]:
    out = sh("systemctl", "list-units", "--all", "--plain", "--no-legend", "lexi-graph-*")
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def active_graph_units() -> list[str]:
    return [u for u in graph_units() if show(u, "ActiveState") in ("active", "activating")]


def commands_in(cgroup: str) -> set[str]:
    """The command names (comm) of the processes in a unit's cgroup."""
    names = set()
    with contextlib.suppress(OSError):
        for pid in Path(f"/sys/fs/cgroup{cgroup}/cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                names.add(Path(f"/proc/{pid}/comm").read_text().strip())
    return names


def graph_cap_planned(job: str) -> str:
    """The graph unit's MemoryMax as `lexi-maint plan` states it ("" when it states none)."""
    match = re.search(r"graph server \(its own unit\): .*? cap MemoryMax=(\S+)",
                      sh(LEXI, "plan", job).stdout)  # fmt: skip
    return match.group(1) if match else ""


class Sampler:
    """Watches the system while a run goes: service state, job unit cgroup, daemon STATUS."""

    def __init__(self) -> None:
        self.samples: dict[str, Any] = {
            "service_states": set(), "memory_max": set(), "statuses": [], "slice_paths": set(),
            "credential_seen": set(), "secret_leaks": set(), "job_users": set(),
            "credential_readable_by_job_user": set(), "job_security": [],
            # issue 13: where redis-server runs (graph unit or job unit), the graph unit's cap
            "redis_in": set(), "graph_memory_max": set(), "graph_units": set(),
        }  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples["service_states"].add(show("lexi.service", "ActiveState"))
            for unit in pipeline_units():
                cgroup = show(unit, "ControlGroup")
                if cgroup:
                    self.samples["slice_paths"].add(cgroup)
                    limit = Path(f"/sys/fs/cgroup{cgroup}/memory.max")
                    if limit.exists():
                        self.samples["memory_max"].add(limit.read_text().strip())
                    self._credential(unit)
                    self._security(unit)
                    if "redis-server" in commands_in(cgroup):
                        self.samples["redis_in"].add("job unit")
            for unit in graph_units():
                self.samples["graph_units"].add(unit)
                cgroup = show(unit, "ControlGroup")
                if cgroup:
                    limit = Path(f"/sys/fs/cgroup{cgroup}/memory.max")
                    with contextlib.suppress(OSError):
                        self.samples["graph_memory_max"].add(limit.read_text().strip())
                    if "redis-server" in commands_in(cgroup):
                        self.samples["redis_in"].add("graph unit")
            status = show("lexi-maintd.service", "StatusText")
            if status and (not self.samples["statuses"] or self.samples["statuses"][-1] != status):
                self.samples["statuses"].append(status)
            time.sleep(0.3)

    def _security(self, unit: str) -> None:
        """`systemd-analyze security` of the running job unit, once per run."""
        if self.samples["job_security"]:
            return
        table = sh("systemd-analyze", "security", "--no-pager", unit).stdout.strip().splitlines()
        if show(unit, "ActiveState") == "active" and table:
            self.samples["job_security"] = table

    def _credential(self, unit: str) -> None:
        """The key is in the unit's credential directory, never in argv or environment."""
        credential = Path(f"/run/credentials/{unit}/deepseek-api-key")
        with contextlib.suppress(OSError):
            self.samples["credential_seen"].add(credential.read_text().strip() == SECRET)
        pid = show(unit, "MainPID")
        with contextlib.suppress(OSError, ValueError, KeyError):
            # until it execs lexi-maint, the main process is systemd's child, still root while
            # it sets up the sandbox's namespaces: not the job yet
            if b"--run-id" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return
            status = Path(f"/proc/{pid}/status").read_text()
            uid = int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1])
            user = pwd.getpwuid(uid).pw_name
            if user not in self.samples["job_users"] and user != "root":
                readable = sh("runuser", "-u", user, "--", "cat", str(credential)).stdout
                self.samples["credential_readable_by_job_user"].add(readable.strip() == SECRET)
            self.samples["job_users"].add(user)
        for name in ("cmdline", "environ"):
            with contextlib.suppress(OSError):
                if SECRET.encode() in Path(f"/proc/{pid}/{name}").read_bytes():
                    self.samples["secret_leaks"].add(f"{unit} {name}")

    def result(self) -> dict[str, Any]:
        return {k: sorted(v) if isinstance(v, set) else v for k, v in self.samples.items()}


def journal_fields(unit_pattern: str | None = None) -> list[dict[str, Any]]:
    argv = ["journalctl", "-b", "-o", "json", "--no-pager"]
    entries = []
    for line in sh(*argv).stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if any(k.startswith("LEXI_") for k in entry):
            entries.append({k: v for k, v in entry.items() if k.startswith(("LEXI_", "MESSAGE",
                            "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER"))})  # fmt: skip
    return entries


def submit(job: str, *extra: str) -> str:
    out = sh(LEXI, "submit", job, *extra).stdout
    return out.split()[1] if out.startswith("submitted") else out.split()[4]


def run_phase(run_id: str) -> str:
    for line in sh(LEXI, "list").stdout.splitlines():
        if line.startswith(run_id):
            return line.split()[2]
    return ""


def done_count(job: str) -> int:
    return sum(1 for d in ledger(job).get("documents", []) if d["status"] == "done")


# -- scenarios -------------------------------------------------------------------------------


def s7_socket_access(r: dict[str, Any]) -> None:
    outsider = sh("runuser", "-u", "outsider", "--", LEXI, "list")
    r["outsider_rc"], r["outsider_err"] = outsider.returncode, outsider.stderr.strip()
    insider = sh("runuser", "-u", "insider", "--", LEXI, "list")
    r["insider_rc"], r["insider_out"] = insider.returncode, insider.stdout.strip()
    os.chmod("/run/lexi-maint/api.sock", 0o666)  # only SO_PEERCRED stands in the way now
    try:
        peer = sh("runuser", "-u", "outsider", "--", LEXI, "list")
    finally:
        os.chmod("/run/lexi-maint/api.sock", 0o660)
    r["peercred_rc"], r["peercred_err"] = peer.returncode, peer.stderr.strip()


def lexi_journal(lines: int = 150) -> str:
    """What lexi-maint's units logged last, for a scenario that failed."""
    out = sh("journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-n", str(lines),
             "-u", "lexi-*")  # fmt: skip
    return out.stdout


def pipeline_journal() -> str:
    out = sh("journalctl", "-b", "--no-pager", "-o", "cat", "-u", "lexi-pipeline-*").stdout
    return out[-5000:]


def s1_batch(r: dict[str, Any]) -> None:
    before = int(show("lexi.service", "MainPID") or 0)
    stubborn_before = sh("pgrep", "-f", "stubborn.py").stdout.split()
    r["graph_cap_planned"] = graph_cap_planned("cao_import")
    with Sampler() as sampler, Prober() as prober:  # stop mode: the prober measures downtime
        proc = sh("systemctl", "start", "--wait", "lexi-batch@cao_import.service")
    r["prober"] = prober.summary()
    r["start_rc"] = proc.returncode
    r["batch_result"] = show("lexi-batch@cao_import.service", "Result")
    r["batch_exit"] = show("lexi-batch@cao_import.service", "ExecMainStatus")
    r["observed"] = sampler.result()
    r["service_pid_changed"] = before != int(show("lexi.service", "MainPID") or 0)
    r["rogue_alive"] = alive(ROGUE.pid) if ROGUE else None
    now = sh("pgrep", "-f", "stubborn.py").stdout.split()
    r["stubborn_before"] = stubborn_before
    r["stubborn_left"] = [pid for pid in stubborn_before if pid in now]
    r["pipeline_journal"] = pipeline_journal()
    r["units_left"] = pipeline_units()  # AddRef'd job units are released and unloaded
    r["graph_units_left"] = graph_units()  # stopped after the job unit, reset, unloaded
    r["redis_left"] = sh("pgrep", "-x", "redis-server").stdout.split()
    r["graph_log"] = graph_log_files()  # the graph unit's stop rewrote the log: no replay
    data = ledger("cao_import")
    r["ledger_counts"] = data.get("counts")
    r["documents"] = len(data.get("documents", []))
    r["batch_journal"] = sh("journalctl", "-b", "-u", "lexi-batch@cao_import", "--no-pager",
                            "-o", "cat").stdout[-4000:]  # fmt: skip
    entries = journal_fields()
    r["journal_fields"] = sorted({k for e in entries for k in e if k.startswith("LEXI_")})
    r["message_ids"] = sorted({e["MESSAGE_ID"] for e in entries if "MESSAGE_ID" in e})
    health = "import httpx; print(httpx.get('http://127.0.0.1:8000/health').text.strip())"
    r["health"] = sh(PY, "-c", health).stdout.strip()
    r["ownership"] = ownership()
    r["doctor"] = sh(LEXI, "doctor", "cao_import").stdout


def graph_log_files() -> dict[str, str]:
    """The graph server's append-only files: kind (base, incr) -> "owner bytes"."""
    found = {}
    for path in (STATE / "falkordb" / "data" / "appendonlydir").glob("*.aof.*"):
        if path.suffixes[-1] in (".rdb", ".aof"):
            st = path.stat()
            found[path.suffixes[-2].lstrip(".")] = f"{pwd.getpwuid(st.st_uid).pw_name} {st.st_size}"
    return found


def ownership() -> dict[str, str]:
    """Who owns the pipeline's state and the daemon's records, with the directory modes."""
    found = {}
    for path in (STATE, STATE / "ledger.sqlite3", STATE / "falkordb", RECORDS):
        with contextlib.suppress(OSError):
            st = path.stat()
            found[str(path)] = f"{pwd.getpwuid(st.st_uid).pw_name} {stat.S_IMODE(st.st_mode):04o}"
    return found


def s10_sandbox(r: dict[str, Any]) -> None:
    """A unit with the job unit's own properties (built by lexi-maint's code for job
    cao_import, Memgraph as the graph store so its password is handed over too) runs
    sandbox_probe.py instead of the pipeline: what can a compromised parser reach?"""
    from lexi_maint.config import load_config
    from lexi_maint.config.graph import GraphConfig, MemgraphConfig
    from lexi_maint.lifecycle.sandbox import job_sandbox
    from lexi_maint.systemd.dbus import PystemdSystemd
    from lexi_maint.systemd.properties import PipelineRun, UnitProperty, pipeline_properties

    config = load_config(CONFIG)
    memgraph = MemgraphConfig(username="lexi", password_file=PASSWORD_FILE)
    config = dataclasses.replace(config, graph=GraphConfig(backend="memgraph", memgraph=memgraph))
    job = config.job("cao_import")
    probe = Path("/srv/lexi-sandbox-probe.py")
    shutil.copy(HERE / "sandbox_probe.py", probe)
    probe.chmod(0o644)
    run = PipelineRun(job.name, "sandbox-probe", config.source, 1)
    props = [
        p for p in pipeline_properties(run, job.limits, config.daemon, job_sandbox(config, job))
        if p.name != "ExecStart"
    ]  # fmt: skip
    argv = [PY, str(probe), str(config.state_dir), str(job.input), str(PASSWORD_FILE)]
    props.append(UnitProperty("ExecStart", "a(sasb)", [(PY, argv, False)]))
    props.append(UnitProperty("AddRef", "b", True))
    r["properties"] = sorted({p.name for p in props})
    systemd = PystemdSystemd()
    unit = "lexi-sandbox-probe.service"
    try:
        r["start"] = systemd.start_transient(unit, props, 60)
        wait_for("the probe unit", lambda: systemd.status(unit).finished, 120)
        r["result"] = systemd.status(unit).result
    finally:
        systemd.reset_failed(unit)
        systemd.unref(unit)
        systemd.close()
    out = sh("journalctl", "-b", "--no-pager", "-o", "cat", "-u", unit).stdout
    line = next((x for x in out.splitlines() if x.startswith("SANDBOX-PROBE ")), "")
    r["probe"] = json.loads(line.removeprefix("SANDBOX-PROBE ")) if line else out[-3000:]
    r["foreign_in_state"] = sorted(os.listdir(STATE))
    r["secret_files"] = leaks()


def leaks() -> dict[str, list[str]]:
    """Where the API key or the Memgraph password shows: whole journal, ledger, LLM cache."""
    journal = sh("journalctl", "-b", "--no-pager", "-o", "json").stdout
    found: dict[str, list[str]] = {"journal": [s for s in (SECRET, PASSWORD) if s in journal]}
    for path in sorted(STATE.rglob("*")):
        with contextlib.suppress(OSError):
            if path.is_file() and path.stat().st_size < 64 * 2**20:
                data = path.read_bytes()
                hits = [s for s in (SECRET, PASSWORD) if s.encode() in data]
                if hits:
                    found[str(path)] = hits
    return found


def s5_timer(r: dict[str, Any]) -> None:
    dropin = Path("/etc/systemd/system/lexi-batch@cao_import.timer.d")
    dropin.mkdir(parents=True)
    when = time.strftime("%H:%M:%S", time.localtime(time.time() + 15))
    (dropin / "soon.conf").write_text(
        f"[Timer]\nOnCalendar=\nOnCalendar=*-*-* {when}\nRandomizedDelaySec=0\n"
    )
    sh("systemctl", "daemon-reload", check=True)
    before = show("lexi-batch@cao_import.service", "ExecMainStartTimestampMonotonic")
    sh("systemctl", "start", "lexi-batch@cao_import.timer", check=True)
    r["next_elapse"] = show("lexi-batch@cao_import.timer", "NextElapseUSecRealtime")

    def ran() -> bool:
        started = show("lexi-batch@cao_import.service", "ExecMainStartTimestampMonotonic")
        state = show("lexi-batch@cao_import.service", "ActiveState")
        return started != before and state in ("inactive", "failed")

    r["waited"] = round(wait_for("the timer-started batch", ran, 180), 1)
    r["batch_result"] = show("lexi-batch@cao_import.service", "Result")
    r["triggered_by"] = show("lexi-batch@cao_import.service", "TriggeredBy")
    history = json.loads(sh(LEXI, "runs", "cao_import", "--json", "--limit", "1").stdout)
    r["history"] = history["runs"][0] if history["runs"] else {}
    sh("systemctl", "stop", "lexi-batch@cao_import.timer")


def s2_oom(r: dict[str, Any]) -> None:
    proc = sh("systemctl", "start", "--wait", "lexi-batch@oom.service", timeout=900)
    r["start_rc"] = proc.returncode
    r["batch_exit"] = show("lexi-batch@oom.service", "ExecMainStatus")
    data = ledger("oom")
    r["documents"] = {Path(d["path"]).name: [d["status"], d["error"]] for d in data["documents"]}
    r["batch_journal"] = sh("journalctl", "-b", "-u", "lexi-batch@oom", "--no-pager",
                            "-o", "cat").stdout[-6000:]  # fmt: skip
    r["pipeline_journal"] = pipeline_journal()
    daemon_log = sh("journalctl", "-b", "-u", "lexi-maintd", "--no-pager", "-o", "cat").stdout
    r["oom_restart_logged"] = "was OOM-killed" in daemon_log
    r["unit_results"] = [line for line in daemon_log.splitlines() if "job units:" in line][-1:]
    # which process the kernel chose each time, and what its cgroup held then
    kernel = sh("journalctl", "-k", "-b", "--no-pager", "-o", "cat").stdout.splitlines()
    r["kernel_oom"] = [
        line for line in kernel
        if "Killed process" in line or "oom-kill:" in line or line.startswith(("anon ", "file "))
    ][-24:]  # fmt: skip
    operator_view(r, "oom")


def operator_view(r: dict[str, Any], job: str) -> None:
    """Issue 12 in a real systemd: the failed batch started its OnFailure unit, the catalog
    explains the entries (journalctl -x), the run summary and documents carry their fields."""
    notify = f"lexi-notify@{job}.service"
    r["notify_waited"] = round(wait_for("the OnFailure unit", lambda: show(
        notify, "ExecMainExitTimestampMonotonic") not in ("", "0"), 60), 1)  # fmt: skip
    r["notify_result"] = show(notify, "Result")
    r["notify_journal"] = sh("journalctl", "-b", "-u", notify, "--no-pager", "-o", "cat").stdout
    r["explained"] = sh("journalctl", "-b", "-x", "--no-pager", "-u", "lexi-maintd",
                        "MESSAGE_ID=6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c04").stdout[-3000:]  # fmt: skip
    entries = journal_fields()
    summaries = [e for e in entries if e.get("MESSAGE_ID") == "6f3c1a5e2b9d4c8e9a1b7d2e4f6a8c07"
                 and e.get("LEXI_JOB") == job]  # fmt: skip
    r["summary_fields"] = summaries[-1] if summaries else {}
    r["outcomes"] = sorted({
        f"{e.get('LEXI_OUTCOME')}:{e.get('LEXI_ERROR_CLASS', '')}"
        for e in entries if e.get("LEXI_JOB") == job and "LEXI_OUTCOME" in e
    })  # fmt: skip
    # every attempt at the oversized document, in journal order, whoever logged it (its
    # runner, the daemon once the OOM-killed unit was gone, the next unit), with its message
    r["huge_outcomes"] = [
        f"{e.get('LEXI_OUTCOME')}:{e.get('LEXI_ERROR_CLASS', '')}"
        for e in entries if e.get("LEXI_JOB") == job and "LEXI_OUTCOME" in e
        and e.get("LEXI_DOCUMENT", "").endswith("/a-huge.pdf")
    ]  # fmt: skip
    r["huge_messages"] = [
        f"{e.get('SYSLOG_IDENTIFIER')}: {e.get('MESSAGE')}"
        for e in entries if e.get("LEXI_JOB") == job and "LEXI_OUTCOME" in e
        and e.get("LEXI_DOCUMENT", "").endswith("/a-huge.pdf")
    ]  # fmt: skip
    history = json.loads(sh(LEXI, "runs", job, "--json", "--limit", "1").stdout)
    r["history"] = history["runs"][0] if history["runs"] else {}
    r["runs_table"] = sh(LEXI, "runs", job, "--limit", "1").stdout


def s4_cancel(r: dict[str, Any]) -> None:
    run_id = submit("big")
    r["run_id"] = run_id
    wait_for("the big job to start documents", lambda: done_count("big") >= 2, 150)
    r["units_before_cancel"] = pipeline_units()
    r["cancel"] = sh(LEXI, "cancel", run_id).stdout.strip()
    wait_for("the cancelled run to finish", lambda: run_phase(run_id) == "cancelled", 300)
    r["phase"] = run_phase(run_id)
    r["units_after"] = [u for u in pipeline_units() if show(u, "ActiveState") == "active"]
    r["done_after_cancel"] = done_count("big")


def s3_daemon_killed(r: dict[str, Any]) -> None:
    run_id = submit("big")
    r["run_id"] = run_id
    start_done = done_count("big")
    wait_for("documents to progress", lambda: done_count("big") >= start_done + 2, 150)
    r["service_while_running"] = show("lexi.service", "ActiveState")
    r["graph_units_while_running"] = active_graph_units()
    r["kill"] = sh("systemctl", "kill", "-s", "SIGKILL", "lexi-maintd.service").returncode
    time.sleep(1)
    r["graph_units_after_kill"] = active_graph_units()  # not the daemon's: they outlive it
    sh("systemctl", "start", "lexi-maintd.service")
    r["restore_wait"] = round(wait_for("lexi.service restored",
                                       lambda: show("lexi.service", "ActiveState") == "active",
                                       240), 1)  # fmt: skip
    r["interrupted"] = run_phase(run_id)
    r["orphan_units"] = [u for u in pipeline_units() if show(u, "ActiveState") == "active"]
    r["orphan_graph_units"] = active_graph_units()
    r["redis_after_recovery"] = sh("pgrep", "-x", "redis-server").stdout.split()
    r["ownership_after_restart"] = ownership()  # before the resumed run hands it over again
    resumed = sh(LEXI, "submit", "big", "--wait", timeout=900)
    r["resume_rc"], r["resume_tail"] = resumed.returncode, resumed.stdout[-2000:]
    r["graph_units_after_resume"] = graph_units()
    data = ledger("big")
    r["statuses"] = sorted({d["status"] for d in data["documents"]})
    r["chunks_in_ledger"] = sum(d["chunks"] or 0 for d in data["documents"])
    r["documents_in_ledger"] = len(data["documents"])
    r["ownership"] = ownership()
    r["graph"] = sh(LEXI, "graph", "query",
                    "MATCH (d:Document) WHERE d.path STARTS WITH '/srv/lexi/documents/big/' "
                    "OPTIONAL MATCH (d)-[:HAS_CHUNK]->(c) RETURN count(DISTINCT d) AS docs, "
                    "count(c) AS chunks").stdout.strip()  # fmt: skip


def s8_backstop(r: dict[str, Any]) -> None:
    """The daemon dies and cannot come back (every start fails until the end of the check):
    lexi-batch@'s ExecStopPost stops the job unit and starts the service itself."""
    sh(LEXI, "submit", "big", "--reprocess")  # nothing left to do otherwise
    sh("systemctl", "start", "--no-block", "lexi-batch@big.service")
    wait_for("the job unit", lambda: any(show(u, "ActiveState") == "active"
                                          for u in pipeline_units()), 120)  # fmt: skip
    r["service_while_running"] = show("lexi.service", "ActiveState")
    daemon_stays_dead(True)  # not `mask --runtime`: the unit in /etc outranks a mask in /run
    try:
        sh("systemctl", "kill", "-s", "SIGKILL", "lexi-maintd.service")
        r["restore_wait"] = round(wait_for("the backstop to start lexi.service",
                                           lambda: show("lexi.service", "ActiveState") == "active",
                                           120), 1)  # fmt: skip
        wait_for("lexi-batch@big to end", lambda: show("lexi-batch@big.service", "ActiveState")
                 in ("inactive", "failed"), 120)  # fmt: skip
        r["daemon_while_dead"] = show("lexi-maintd.service", "ActiveState")
        r["batch_result"] = show("lexi-batch@big.service", "Result")
        r["stop_post"] = show("lexi-batch@big.service", "ExecStopPost")
        r["job_units_active"] = [u for u in pipeline_units()
                                 if show(u, "ActiveState") == "active"]  # fmt: skip
        r["graph_units_active"] = active_graph_units()
        r["backstop_journal"] = sh("journalctl", "-b", "-u", "lexi-batch@big", "--no-pager",
                                   "-o", "cat").stdout[-2000:]  # fmt: skip
    finally:
        daemon_stays_dead(False)
    r["daemon_after"] = show("lexi-maintd.service", "ActiveState")
    hold = RECORDS / "hold.json"
    with contextlib.suppress(TimeoutError):  # the daemon closes the run after its start
        r["close_wait"] = round(wait_for("the daemon to close the run",
                                         lambda: not hold.exists(), 120), 1)  # fmt: skip
    r["hold_after"] = hold.exists()


def s6_broken_config(r: dict[str, Any]) -> None:
    good = CONFIG.read_text()
    CONFIG.write_text(good.replace("workers = 2", 'workers = "two"', 1))
    try:
        sh("systemctl", "restart", "lexi-maintd.service")
        time.sleep(2)
        r["active_state"] = show("lexi-maintd.service", "ActiveState")
        r["result"] = show("lexi-maintd.service", "Result")
        r["exit_status"] = show("lexi-maintd.service", "ExecMainStatus")
        r["journal"] = sh("journalctl", "-b", "-u", "lexi-maintd", "-n", "20", "--no-pager",
                          "-o", "cat").stdout  # fmt: skip
    finally:
        CONFIG.write_text(good)
        sh("systemctl", "reset-failed", "lexi-maintd.service")
        sh("systemctl", "start", "lexi-maintd.service")
    r["active_after_fix"] = show("lexi-maintd.service", "ActiveState")


def s9_uninstall(r: dict[str, Any]) -> None:
    """Last: `make uninstall` removes the program and units, keeps config and ledger."""
    proc = sh("make", "-C", "/root/lexi-maint", "uninstall")
    r["rc"], r["output"] = proc.returncode, (proc.stdout + proc.stderr)[-1500:]
    # the image's wheelhouse under the prefix is not install's to remove: the prefix stays
    r["venv_gone"] = not any(Path("/opt/lexi-maint", n).exists() for n in ("venv", "README.md"))
    r["wheels_kept"] = Path("/opt/lexi-maint/wheels").is_dir()
    r["units_gone"] = not any(Path("/etc/systemd/system", u).exists() for u in (
        "lexi-maintd.service", "lexi-maintd.socket", "lexi-batch@.service",
        "lexi-batch@.timer", "lexi-batch.slice"))  # fmt: skip
    r["daemon_state"] = show("lexi-maintd.service", "LoadState")
    r["config_kept"] = CONFIG.exists()
    r["ledger_kept"] = Path("/var/lib/lexi-maint/ledger.sqlite3").exists()


# -- quiesce = "shrink" (issue 14) ---------------------------------------------------------

BALLAST_DROPIN = Path("/etc/systemd/system/lexi.service.d/ballast.conf")
PLAN_CAP = re.compile(r"job cap MemoryMax=(\d+)M")
PLAN_GRAPH_CAP = re.compile(r"graph server \(its own unit\): .*? cap MemoryMax=(\d+)M")
PLAN_SHRINK = re.compile(r"quiesce = shrink: shrink lexi\.service by (\d+) with MemoryMax=(\d+)M")
RESERVE_MB = 256  # [planner] host_reserve default


def available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    raise LookupError("no MemAvailable in /proc/meminfo")


def restart_service() -> int:
    sh("systemctl", "daemon-reload", check=True)
    sh("systemctl", "restart", "lexi.service", check=True)
    pid = int(show("lexi.service", "MainPID"))
    wait_for("4 gunicorn workers", lambda: gunicorn_workers(pid) == 4, 120)
    wait_for("the health URL", healthy, 60)
    return pid


def healthy() -> bool:
    probe = "import httpx; httpx.get('http://127.0.0.1:8000/health').raise_for_status()"
    return sh(PY, "-c", probe).returncode == 0


def ballast_for_one_worker(job: str, r: dict[str, Any]) -> None:
    """Give each gunicorn worker private memory so that this job's plan must remove one:
    available = cap + reserve + about half a worker after removing one."""
    plan = sh(LEXI, "plan", job, "--reprocess").stdout
    # the job unit's cap and, beside it, the graph unit's: the plan must fit both
    cap_mb = int(PLAN_CAP.findall(plan)[-1]) + sum(int(c) for c in PLAN_GRAPH_CAP.findall(plan))
    free = available_mb()
    ballast = max(40, int((free - cap_mb - RESERVE_MB) / 3.5))
    BALLAST_DROPIN.parent.mkdir(exist_ok=True)
    BALLAST_DROPIN.write_text(f"[Service]\nEnvironment=LEXI_APP_BALLAST_MB={ballast}\n")
    restart_service()
    r["ballast"] = {"available_before_mb": free, "cap_mb": cap_mb, "ballast_mb": ballast,
                    "available_after_mb": available_mb()}  # fmt: skip
    r["plan"] = sh(LEXI, "plan", job, "--reprocess").stdout.strip()


def remove_ballast() -> None:
    BALLAST_DROPIN.unlink(missing_ok=True)
    restart_service()


class Watch:
    """Samples gunicorn's worker count and the job unit's caps while a run goes."""

    def __init__(self, main_pid: int) -> None:
        self.main_pid = main_pid
        self.workers: list[int] = []
        self.caps: set[tuple[str, str]] = set()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            count = gunicorn_workers(self.main_pid)
            if not self.workers or self.workers[-1] != count:
                self.workers.append(count)
            for unit in pipeline_units():
                cgroup = Path(f"/sys/fs/cgroup{show(unit, 'ControlGroup')}")
                with contextlib.suppress(OSError):
                    self.caps.add(((cgroup / "memory.high").read_text().strip(),
                                   (cgroup / "memory.max").read_text().strip()))  # fmt: skip
                    self.peak = max(self.peak, int((cgroup / "memory.peak").read_text()))
            time.sleep(0.2)


def daemon_lines(pattern: str) -> list[str]:
    out = sh("journalctl", "-b", "-u", "lexi-maintd", "--no-pager", "-o", "cat").stdout
    return [line for line in out.splitlines() if pattern in line]


def run_timeline(decided: list[str]) -> list[str]:
    """The daemon's journal lines of the run named in `decided`, with monotonic times."""
    return timeline(decided[-1].split()[1].rstrip(":")) if decided else []


def timeline(run_id: str) -> list[str]:
    out = sh("journalctl", "-b", "-u", "lexi-maintd", "--no-pager", "-o", "short-monotonic")
    return [line[:220] for line in out.stdout.splitlines() if run_id in line][-40:]


def s10_shrink(r: dict[str, Any]) -> None:
    """lexi-batch@shrink: the plan's workers go, lexi.service answers every request."""
    # Each step is logged: one CI run once stopped inside this scenario for 690 s without a
    # word, and its time ran out before the journal could say which step it was.
    ballast_for_one_worker("shrink", r)  # restarts lexi.service: before the prober starts
    log(f"shrink: ballast {r['ballast']}; lexi.service restarted")
    with Prober() as prober:
        pid = int(show("lexi.service", "MainPID"))
        r["workers_before"] = gunicorn_workers(pid)
        started = time.monotonic()
        log(f"shrink: prober started, {r['workers_before']} workers; lexi-batch@shrink starts")
        with Watch(pid) as watch:
            # far above the batch's usual time; on a timeout the scenario records the
            # journal and the shrink scenarios after it still get their time
            proc = sh("systemctl", "start", "--wait", "lexi-batch@shrink.service", timeout=420)
        r["batch_seconds"] = round(time.monotonic() - started, 1)
        log(f"shrink: lexi-batch@shrink ended after {r['batch_seconds']} s (rc {proc.returncode})")
        r["start_rc"] = proc.returncode
        r["batch_result"] = show("lexi-batch@shrink.service", "Result")
        wait_for("gunicorn back to 4", lambda: gunicorn_workers(pid) == 4, 30)
        r["workers_after"] = gunicorn_workers(pid)
        r["main_pid_same"] = int(show("lexi.service", "MainPID")) == pid
        r["workers_seen"] = watch.workers
        r["caps_seen"] = sorted(watch.caps)
        r["job_peak_mb"] = watch.peak // 2**20
        r["service_states"] = show("lexi.service", "ActiveState")
        r["decided"] = daemon_lines("quiesce = shrink: shrink lexi.service by")[-1:]
        r["shrunk_lines"] = daemon_lines("shrunk by")[-2:]
        r["restored_lines"] = daemon_lines("active again (grown by")[-1:]
        r["timeline"] = run_timeline(r["decided"])
        r["ledger_counts"] = ledger("shrink").get("counts")
        r["hold_after"] = (RECORDS / "hold.json").exists()
    r["prober"] = prober.summary()


def s11_shrink_daemon_killed(r: dict[str, Any]) -> None:
    """The daemon is SIGKILLed while lexi.service is shrunk: its restart grows it back."""
    with Prober() as prober:
        pid = int(show("lexi.service", "MainPID"))
        r["workers_before"] = gunicorn_workers(pid)
        run_id = submit("shrink", "--reprocess")
        r["run_id"] = run_id
        wait_for("the job unit", lambda: any(show(u, "ActiveState") == "active"
                                              for u in pipeline_units()), 180)  # fmt: skip
        r["workers_while_running"] = gunicorn_workers(pid)
        r["hold_while_running"] = json.loads((RECORDS / "hold.json").read_text())
        sh("systemctl", "kill", "-s", "SIGKILL", "lexi-maintd.service")
        time.sleep(1)
        sh("systemctl", "start", "lexi-maintd.service")

        def grown() -> bool:
            return gunicorn_workers(pid) == 4 and not (RECORDS / "hold.json").exists()

        r["grow_wait"] = round(wait_for("gunicorn grown back", grown, 240), 1)
        r["workers_after"] = gunicorn_workers(pid)
        r["main_pid_same"] = int(show("lexi.service", "MainPID")) == pid
        r["interrupted"] = run_phase(run_id)
        r["orphan_units"] = [u for u in pipeline_units() if show(u, "ActiveState") == "active"]
    r["prober"] = prober.summary()


DEAD_DAEMON = Path("/run/systemd/system/lexi-maintd.service.d/stays-dead.conf")


def daemon_stays_dead(dead: bool) -> None:
    """A runtime drop-in that makes every start of lexi-maintd fail (so neither Restart= nor
    socket activation brings it back), or its removal. `systemctl mask --runtime` cannot do
    this: the installed unit in /etc/systemd/system outranks a mask in /run."""
    if dead:
        DEAD_DAEMON.parent.mkdir(parents=True, exist_ok=True)
        DEAD_DAEMON.write_text("[Service]\nExecStartPre=/bin/false\n")
    else:
        DEAD_DAEMON.unlink(missing_ok=True)
    sh("systemctl", "daemon-reload", check=True)
    if not dead:
        sh("systemctl", "reset-failed", "lexi-maintd.service", "lexi-maintd.socket")
        sh("systemctl", "start", "lexi-maintd.socket", "lexi-maintd.service")


def s12_shrink_backstop(r: dict[str, Any]) -> None:
    """The daemon dies for good while lexi.service is shrunk: lexi-batch@'s ExecStopPost
    (`restore-orphaned`) stops the job unit and grows gunicorn back; the daemon, back later,
    finds "shrunk by 0" in the hold record and does not grow it a second time."""
    hold_path = RECORDS / "hold.json"
    remove_ballast()  # sized from the memory the workers use without it, as in s10_shrink
    ballast_for_one_worker("shrink", r)  # the plan must remove a worker (restarts lexi.service)
    try:
        with Prober() as prober:
            pid = int(show("lexi.service", "MainPID"))
            r["workers_before"] = gunicorn_workers(pid)
            run_id = submit("shrink", "--reprocess")  # lexi-batch@shrink follows this run
            sh("systemctl", "start", "--no-block", "lexi-batch@shrink.service")

            def shrunk_and_followed() -> bool:
                """Shrunk, the job unit running, and lexi-batch@shrink's `submit --wait`
                attached to the run (killed before it connects, the daemon would leave it
                waiting on the socket for a daemon that never comes, and no ExecStopPost)."""
                followed = f"already queued or running: run {run_id}" in sh(
                    "journalctl", "-b", "-u", "lexi-batch@shrink", "-o", "cat").stdout  # fmt: skip
                return followed and gunicorn_workers(pid) < r["workers_before"] and any(
                    show(u, "ActiveState") == "active" for u in pipeline_units())  # fmt: skip

            wait_for("the shrunk service, its job unit and lexi-batch@", shrunk_and_followed, 180)
            r["workers_while_running"] = gunicorn_workers(pid)
            r["hold_while_running"] = json.loads(hold_path.read_text())
            daemon_stays_dead(True)
            sh("systemctl", "kill", "-s", "SIGKILL", "lexi-maintd.service")
            grown = wait_for("the backstop to grow gunicorn back",
                             lambda: gunicorn_workers(pid) == 4, 150)  # fmt: skip
            r["grow_wait"] = round(grown, 1)

            def batch_ended() -> bool:
                return show("lexi-batch@shrink.service", "ActiveState") in ("inactive", "failed")

            try:
                r["batch_end_wait"] = round(wait_for("lexi-batch@shrink to end", batch_ended,
                                                     180), 1)  # fmt: skip
            finally:
                r["daemon_while_dead"] = show("lexi-maintd.service", "ActiveState")
                r["batch_timeline"] = sh("journalctl", "-b", "--no-pager", "-o", "short-monotonic",
                                         "-u", "lexi-batch@shrink", "-u", "lexi-maintd",
                                         "-n", "60").stdout[-8000:]  # fmt: skip
            r["hold_after_backstop"] = json.loads(hold_path.read_text())
            r["job_units_active"] = [u for u in pipeline_units()
                                     if show(u, "ActiveState") == "active"]  # fmt: skip
            r["stop_post"] = show("lexi-batch@shrink.service", "ExecStopPost")
            r["backstop_journal"] = sh("journalctl", "-b", "-u", "lexi-batch@shrink",
                                       "--no-pager", "-o", "cat").stdout[-2500:]  # fmt: skip
            daemon_stays_dead(False)
            wait_for("the daemon to close the run", lambda: not hold_path.exists(), 120)
            time.sleep(2)  # a second SIGTTIN, were one sent, would show by now
            r["workers_after_daemon"] = gunicorn_workers(pid)
            r["main_pid_same"] = int(show("lexi.service", "MainPID")) == pid
            r["daemon_restore"] = daemon_lines("active again")[-1:]
        r["prober"] = prober.summary()
    finally:
        if DEAD_DAEMON.exists():
            daemon_stays_dead(False)
        remove_ballast()


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    try:
        RESULTS["setup"] = setup()
    except Exception:
        RESULTS["setup"] = {"error": traceback.format_exc()}
        (OUT / "scenarios.json").write_text(json.dumps(RESULTS, indent=2))
        log(RESULTS["setup"]["error"])
        return 1
    (OUT / "scenarios.json").write_text(json.dumps(RESULTS, indent=2))
    log(f"setup: {json.dumps(RESULTS['setup'])[:2000]}")
    selection = REPO.parent / "only"  # written by the host for LEXI_VM_SCENARIOS=a,b
    only = selection.read_text().strip() if selection.exists() else ""
    for name, body in (
        ("socket_access", s7_socket_access),
        ("batch", s1_batch),
        ("sandbox", s10_sandbox),
        ("timer", s5_timer),
        ("oom", s2_oom),
        ("cancel", s4_cancel),
        ("daemon_killed", s3_daemon_killed),
        ("backstop", s8_backstop),
        ("broken_config", s6_broken_config),
        ("shrink", s10_shrink),
        ("shrink_daemon_killed", s11_shrink_daemon_killed),  # after shrink: its ballast
        ("shrink_backstop", s12_shrink_backstop),  # last of the three: removes the ballast
        ("uninstall", s9_uninstall),  # last: it removes lexi-maint
    ):
        if not only or name in only.split(","):
            scenario(name)(body)
    sh("journalctl", "-b", "--no-pager", "-o", "json")  # flush
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
