"""Runs inside the bare VM (issue 9): the README's install block, then a DeepSeek job.

Run by the system python3 (nothing else is installed yet) as
``python3 bare_install.py SHARE``. SHARE holds ``repo/`` (the checkout), ``install.sh`` (the
README's install block, extracted by the host), and the local mirrors that /etc/apt and
/etc/pip.conf of the image name. Writes what it observed to ``SHARE/out/bare.json``; the host
asserts on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

SHARE = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/mnt/host")
OUT = SHARE / "out"
CHECKOUT = Path("/root/lexi-maint")
CONFDIR = Path("/etc/lexi-maint")
KEY_FILE = CONFDIR / "deepseek-api-key"
# the site's API key: the LLM endpoint accepts it; it must reach the job unit only as a credential
SECRET = "sk-lexi-bare-vm-5f0c2d9e71a84b36"
DOCS = Path("/srv/lexi/documents/cao")
EDITOR = Path("/usr/local/sbin/site-edit")
LLM_UNIT = "llm-test-server.service"
LLM_URL_FILE = Path("/run/llm-test-server.url")
TEXTFILE_DIR = Path("/var/lib/prometheus/node-exporter")  # node_exporter's textfile collector
DROP_IN = Path("/etc/systemd/system/lexi-maintd.service.d/metrics.conf")
RECORD: dict[str, Any] = {}

APP = """import http.server

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/health"
        self.send_response(200 if ok else 404)
        self.end_headers()
        self.wfile.write(b"ok\\n" if ok else b"not found\\n")

http.server.ThreadingHTTPServer(("127.0.0.1", 8000), Health).serve_forever()
"""
APP_UNIT = """[Unit]
Description=Lexi AI web app (test double: a health URL on the system python3)

[Service]
ExecStart=/usr/bin/python3 /srv/lexi-app/app.py

[Install]
WantedBy=multi-user.target
"""
# The operator's edit of the installed configuration, and the site's LLM endpoint: the test
# server needs the lexi-maint venv, which exists only once `make install` has run. The
# metrics steps are the README's: the job user may write the textfile directory, the daemon
# gets ReadWritePaths= for it in a drop-in (what `systemctl edit lexi-maintd` writes).
EDIT = f"""#!/bin/sh
set -eu
install -d -m 0775 -g lexi-batch {TEXTFILE_DIR}
mkdir -p {DROP_IN.parent}
printf '[Service]\\nReadWritePaths={TEXTFILE_DIR}\\n' > {DROP_IN}
systemctl daemon-reload
rm -f {LLM_URL_FILE}
systemd-run --unit={LLM_UNIT} --working-directory={CHECKOUT} /opt/lexi-maint/venv/bin/python \\
    -m tests.vm.guest.llm_endpoint {KEY_FILE} {LLM_URL_FILE}
for i in $(seq 600); do [ -s {LLM_URL_FILE} ] && break; sleep 0.2; done
[ -s {LLM_URL_FILE} ] || {{ echo "the LLM endpoint did not start"; exit 1; }}
sed "s|@BASE_URL@|$(cat {LLM_URL_FILE})|" {SHARE}/repo/tests/vm/guest/bare-lexi-maint.toml > "$1"
"""


def sh(*argv: str, timeout: float = 1200, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def log(message: str) -> None:
    print(f"[{time.monotonic():8.1f}] {message}", flush=True)


def show(unit: str, prop: str) -> str:
    return sh("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def save() -> None:
    (OUT / "bare.json").write_text(json.dumps(RECORD, indent=2, default=str))


def step(name: str, body: Callable[[dict[str, Any]], None]) -> bool:
    log(f"=== {name}")
    record: dict[str, Any] = {}
    started = time.monotonic()
    try:
        body(record)
        ok = True
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        log(record["traceback"])
        ok = False
    record["seconds"] = round(time.monotonic() - started, 1)
    RECORD[name] = record
    save()
    log(f"=== {name} done in {record['seconds']} s")
    return ok


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return str(answer.read().decode())


def dpkg_installed(package: str) -> bool:
    status = sh("dpkg-query", "-W", "-f=${db:Status-Abbrev}", package).stdout
    return status.startswith("ii")


WATCHED = ("gcc", "python3-dev", "libsystemd-dev", "pkg-config", "libgomp1", "python3-venv")


def bare_state(r: dict[str, Any]) -> None:
    """What the image holds before anything runs: a bare server."""
    r["installed"] = {p: dpkg_installed(p) for p in WATCHED}
    r["cc"] = shutil.which("cc") or shutil.which("gcc")
    lists = Path("/var/lib/apt/lists")
    r["apt_lists"] = sorted(p.name for p in lists.iterdir() if p.name.endswith("Packages"))
    r["os"] = Path("/etc/os-release").read_text().splitlines()[0]
    r["ensurepip"] = sh("python3", "-c", "import ensurepip").returncode == 0


def site(r: dict[str, Any]) -> None:
    """The server as the operator finds it: lexi.service, documents, the API key, a checkout."""
    shutil.copytree(SHARE / "repo", CHECKOUT)
    Path("/srv/lexi-app").mkdir(parents=True)
    Path("/srv/lexi-app/app.py").write_text(APP)
    Path("/etc/systemd/system/lexi.service").write_text(APP_UNIT)
    sh("systemctl", "daemon-reload")
    r["lexi_start"] = sh("systemctl", "enable", "--now", "lexi.service").returncode
    DOCS.mkdir(parents=True)
    for sample in sorted((CHECKOUT / "samples").iterdir()):
        if sample.suffix in (".txt", ".pdf"):
            shutil.copy(sample, DOCS / sample.name)
    os.chmod("/srv/lexi", 0o755)
    r["documents"] = sorted(p.name for p in DOCS.iterdir())
    CONFDIR.mkdir(mode=0o755)
    KEY_FILE.write_text(SECRET + "\n")
    KEY_FILE.chmod(0o600)
    EDITOR.write_text(EDIT)
    EDITOR.chmod(0o755)


def streamed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run argv, logging each output line as it comes (with the guest's clock): the
    timings of the install's steps are in output.log."""
    lines = []
    with subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            log(f"| {line.rstrip()}")
    return proc.returncode, "".join(lines)


def readme_install(r: dict[str, Any]) -> None:
    """The README's install block, verbatim (the host extracted it into install.sh)."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": "/root", "LANG": "C.UTF-8", "EDITOR": str(EDITOR)}  # fmt: skip
    r["rc"], r["output"] = streamed(["bash", "-e", "-x", str(SHARE / "install.sh")], CHECKOUT, env)
    r["installed"] = {p: dpkg_installed(p) for p in WATCHED}
    r["apt_lists"] = sorted(p.name for p in Path("/var/lib/apt/lists").iterdir())
    r["lexi_maint_on_path"] = shutil.which("lexi-maint", path=env["PATH"])
    r["id_lexi_batch"] = sh("id", "lexi-batch").stdout.strip()
    r["group_lexi_maint"] = sh("getent", "group", "lexi-maint").stdout.strip()
    r["daemon"] = show("lexi-maintd.service", "ActiveState")
    r["verify"] = sh("systemd-analyze", "verify", *(f"/etc/systemd/system/{u}" for u in (
        "lexi-maintd.service", "lexi-maintd.socket", "lexi-batch@.service",
        "lexi-batch@.timer", "lexi-batch.slice"))).stderr  # fmt: skip
    if r["rc"] != 0:
        raise RuntimeError(f"the README's install block failed ({r['rc']})")


class Watch:
    """Samples the system while the job runs; scans every process for the key."""

    def __init__(self) -> None:
        self.samples: dict[str, Any] = {"service_states": set(), "job_units": set(),
                                        "job_users": set(), "secret_in_proc": set(),
                                        "credential_seen": set()}  # fmt: skip
        self.security: dict[str, list[str]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples["service_states"].add(show("lexi.service", "ActiveState"))
            for unit in job_units():
                self.samples["job_units"].add(unit)
                self.unit(unit)
            self.scan_proc()
            time.sleep(0.3)

    def unit(self, unit: str) -> None:
        pid = show(unit, "MainPID")
        # once exec'd: a forked child is still root until systemd applies User=
        if pid not in ("", "0") and b"lexi-maint" in read_bytes(f"/proc/{pid}/cmdline"):
            with contextlib.suppress(OSError):
                uid = Path(f"/proc/{pid}/status").read_text().split("\nUid:")[1].split()[0]
                self.samples["job_users"].add(sh("id", "-nu", uid).stdout.strip())
        with contextlib.suppress(OSError):
            text = Path(f"/run/credentials/{unit}/deepseek-api-key").read_text().strip()
            self.samples["credential_seen"].add(text == SECRET)
        if unit not in self.security and show(unit, "ActiveState") == "active":
            table = sh("systemd-analyze", "security", "--no-pager", unit).stdout
            if show(unit, "ActiveState") == "active" and "Overall exposure" in table:
                self.security[unit] = table.strip().splitlines()

    def scan_proc(self) -> None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            for part in ("environ", "cmdline"):
                with contextlib.suppress(OSError):
                    if SECRET.encode() in (proc / part).read_bytes():
                        self.samples["secret_in_proc"].add(f"{proc.name}/{part}")


def read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def job_units() -> list[str]:
    out = sh("systemctl", "list-units", "--all", "--plain", "--no-legend", "lexi-pipeline-*")
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def score(table: list[str]) -> str:
    return next((line for line in table if "Overall exposure" in line), "")


def job(r: dict[str, Any]) -> None:
    """`systemctl start lexi-batch@cao_import`, watched; `make install` refuses meanwhile."""
    watch = Watch()
    watch.thread.start()
    service_pid = show("lexi.service", "MainPID")
    started = time.monotonic()
    batch = "lexi-batch@cao_import.service"
    r["start_rc"] = sh("systemctl", "start", batch).returncode  # returns once it runs (Type=exec)

    def batch_done() -> bool:
        return show(batch, "ActiveState") in ("inactive", "failed")

    deadline = time.monotonic() + 300
    while not job_units() and not batch_done() and time.monotonic() < deadline:
        time.sleep(0.2)
    r["job_unit_seen_after"] = round(time.monotonic() - started, 1)
    upgrade = sh("make", "-C", str(CHECKOUT), "install")  # while the job runs
    r["upgrade_during_run"] = {"rc": upgrade.returncode, "output": upgrade.stdout + upgrade.stderr,
                               "job_still_running": bool(job_units())}  # fmt: skip
    while not batch_done() and time.monotonic() < started + 1800:
        time.sleep(0.5)
    r["seconds_job"] = round(time.monotonic() - started, 1)
    watch.stop.set()
    watch.thread.join()
    r["observed"] = {k: sorted(v) for k, v in watch.samples.items()}
    r["job_security"] = {unit: table for unit, table in watch.security.items()}
    r["job_score"] = [score(t) for t in watch.security.values()]
    r["scores"] = {u: score(sh("systemd-analyze", "security", "--no-pager", u).stdout.splitlines())
                   for u in ("lexi-maintd.service", "lexi-batch@cao_import.service")}  # fmt: skip
    r["batch_result"] = show("lexi-batch@cao_import.service", "Result")
    r["batch_exit"] = show("lexi-batch@cao_import.service", "ExecMainStatus")
    r["batch_journal"] = sh("journalctl", "-b", "-u", "lexi-batch@cao_import", "--no-pager",
                            "-o", "cat").stdout[-4000:]  # fmt: skip
    status = sh("lexi-maint", "status", "cao_import", "--json").stdout
    data = json.loads(status) if status.strip() else {}
    r["counts"] = data.get("counts")
    r["documents"] = {
        Path(d["path"]).name: {
            "status": d["status"],
            "chunks": d["chunks"],
            "llm": d["llm"],
            "warnings": d["warnings"],
        }
        for d in data.get("documents", [])
    }
    base_url = LLM_URL_FILE.read_text().strip()
    r["llm_server"] = json.loads(http_get(f"{base_url}/_admin/stats"))
    r["metrics"] = metrics_files("cao_import")
    r["service_after"] = show("lexi.service", "ActiveState")
    r["service_pid_changed"] = show("lexi.service", "MainPID") != service_pid
    r["health"] = http_get("http://127.0.0.1:8000/health").strip()


def metrics_files(job_name: str) -> dict[str, Any]:
    """The run's and the daemon's .prom files (the host parses them), their modes, and
    whether a user who is neither root nor lexi-batch (node_exporter's) can read them."""
    found: dict[str, Any] = {}
    for name in (f"lexi-maint-{job_name}.prom", f"lexi-maintd-{job_name}.prom"):
        path = TEXTFILE_DIR / name
        deadline = time.monotonic() + 60  # the daemon writes its file once it restored
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        if not path.exists():
            found[name] = None
            continue
        nobody = sh("runuser", "-u", "nobody", "--", "cat", str(path)).returncode == 0
        found[name] = {"mode": oct(path.stat().st_mode & 0o777), "text": path.read_text(),
                       "owner": path.owner(), "nobody_reads": nobody}  # fmt: skip
    found["others"] = sorted(p.name for p in TEXTFILE_DIR.iterdir())
    found["warnings"] = sh("journalctl", "-b", "--no-pager", "-o", "cat",
                           "--grep", "metrics: cannot write").stdout[-2000:]  # fmt: skip
    return found


def leaks(r: dict[str, Any]) -> None:
    """The key in the journal, the ledger or anywhere in the state directory?"""
    sh("journalctl", "--sync")
    journal = sh("journalctl", "-b", "-o", "json", "--no-pager").stdout
    r["journal_bytes"] = len(journal)
    r["in_journal"] = SECRET in journal
    hits = []
    for path in Path("/var/lib/lexi-maint").rglob("*"):
        with contextlib.suppress(OSError):
            if path.is_file() and SECRET.encode() in path.read_bytes():
                hits.append(str(path))
    r["in_state_dir"] = hits
    r["ledger_exists"] = Path("/var/lib/lexi-maint/ledger.sqlite3").is_file()


def upgrade_idle(r: dict[str, Any]) -> None:
    """Re-running `make install` when the daemon is idle restarts it onto the new code."""
    before = show("lexi-maintd.service", "MainPID")
    started = time.monotonic()
    proc = sh("make", "-C", str(CHECKOUT), "install")
    r["seconds"] = round(time.monotonic() - started, 1)
    r["rc"], r["output"] = proc.returncode, proc.stdout + proc.stderr
    r["daemon"] = show("lexi-maintd.service", "ActiveState")
    r["pid_changed"] = show("lexi-maintd.service", "MainPID") != before
    r["apt_quiet"] = "Debian packages: all present" in proc.stdout


def uninstall(r: dict[str, Any]) -> None:
    """`make uninstall` disables every timer instance, which `disable 'x@*.timer'` cannot."""
    for job_name in ("cao_import", "nightly-2"):
        sh("systemctl", "enable", "--now", f"lexi-batch@{job_name}.timer")
    wants = Path("/etc/systemd/system/timers.target.wants")
    r["timers_before"] = sorted(p.name for p in wants.iterdir())
    proc = sh("make", "-C", str(CHECKOUT), "uninstall")
    r["rc"], r["output"] = proc.returncode, proc.stdout + proc.stderr
    r["timers_after"] = sorted(p.name for p in wants.iterdir()) if wants.exists() else []
    r["timers_active"] = sh("systemctl", "list-units", "--plain", "--no-legend",
                            "lexi-batch@*.timer").stdout.strip()  # fmt: skip
    r["on_path"] = Path("/usr/local/bin/lexi-maint").exists()
    r["venv"] = any(Path("/opt/lexi-maint", name).exists() for name in ("venv", "README.md"))
    r["config_kept"] = (CONFDIR / "lexi-maint.toml").exists()
    r["service"] = show("lexi.service", "ActiveState")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    ok = step("bare", bare_state) and step("site", site) and step("install", readme_install)
    ok = ok and step("job", job)
    if ok:
        step("leaks", leaks)
        step("upgrade_idle", upgrade_idle)
        step("uninstall", uninstall)
    sh("journalctl", "--sync")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
