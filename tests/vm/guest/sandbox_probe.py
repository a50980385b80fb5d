"""Runs INSIDE a job unit's sandbox (same properties as a real job unit): tries what a
compromised document parser would try and prints one JSON line of what happened.

    python3 sandbox_probe.py STATE_DIR INPUT_DIR PASSWORD_FILE

The Memgraph password is read as the pipeline reads it (`load_credentials`); only its
sha256 is printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
from pathlib import Path

from lexi_maint.config.graph import MemgraphConfig
from lexi_maint.errors import LexiMaintError
from lexi_maint.graph.credentials import load_credentials

STATE, INPUT, PASSWORD_FILE = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])


def attempt(action: str, path: str) -> str:
    """'ok' or the errno name of the failure."""
    try:
        if action == "write":
            with open(path, "w") as handle:
                handle.write("probe\n")
            os.unlink(path)
        elif action == "read":
            with open(path, "rb") as handle:
                handle.read(1)
        else:
            os.listdir(path)
    except OSError as exc:
        return exc.__class__.__name__ if exc.errno is None else os.strerror(exc.errno)
    return "ok"


def family(name: str) -> str:
    try:
        kind = socket.SOCK_RAW if name == "AF_PACKET" else socket.SOCK_DGRAM
        socket.socket(getattr(socket, name), kind).close()
    except OSError as exc:
        return os.strerror(exc.errno or 0)
    return "ok"


def memgraph_password() -> dict[str, str]:
    try:
        found = load_credentials(MemgraphConfig(username="lexi", password_file=PASSWORD_FILE))
    except LexiMaintError as exc:
        return {"error": str(exc)}
    if found.password is None:
        return {"error": "no password"}
    digest = hashlib.sha256(found.password.reveal().encode()).hexdigest()
    return {"source": found.password.source, "sha256": digest}


def secrets_shown(credentials: str) -> list[str]:
    """Which credential's content also shows in this process's environment or command line."""
    if not credentials:
        return []
    shown = []
    cmdline = Path("/proc/self/cmdline").read_bytes()
    environ = Path("/proc/self/environ").read_bytes()
    for name in sorted(os.listdir(credentials)):
        secret = (Path(credentials) / name).read_text().strip().encode()
        if secret and (secret in cmdline or secret in environ):
            shown.append(name)
    return shown


def main() -> None:
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
    first_input = next((p for p in sorted(INPUT.iterdir()) if p.is_file()), INPUT)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY", "")
    found = {
        "uid": os.getuid(),
        "cap_bounding": fields.get("CapBnd", "").strip(),
        "no_new_privs": fields.get("NoNewPrivs", "").strip(),
        "seccomp": fields.get("Seccomp", "").strip(),
        "write": {
            str(STATE / "runs" / "probe.tmp"): attempt("write", str(STATE / "runs" / "probe.tmp")),
            "/etc/lexi-probe": attempt("write", "/etc/lexi-probe"),
            "/opt/lexi-maint/lexi-probe": attempt("write", "/opt/lexi-maint/lexi-probe"),
            "/var/tmp/lexi-probe": attempt("write", "/var/tmp/lexi-probe"),
            "/srv/lexi-probe": attempt("write", "/srv/lexi-probe"),
            str(INPUT / "lexi-probe"): attempt("write", str(INPUT / "lexi-probe")),
            "/tmp/lexi-probe": attempt("write", "/tmp/lexi-probe"),  # private /tmp
        },
        "read": {
            "/etc/shadow": attempt("read", "/etc/shadow"),
            "/root": attempt("list", "/root"),
            "/home": attempt("list", "/home"),
            str(first_input): attempt("read", str(first_input)),
            str(PASSWORD_FILE): attempt("read", str(PASSWORD_FILE)),
        },
        "memgraph_password": memgraph_password(),
        "families": {name: family(name) for name in ("AF_NETLINK", "AF_PACKET", "AF_INET")},
        "credentials": sorted(os.listdir(credentials)) if credentials else [],
        "environment_names": sorted(os.environ),
        "secrets_in_environ_or_cmdline": secrets_shown(credentials),
    }
    print("SANDBOX-PROBE " + json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
