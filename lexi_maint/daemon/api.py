"""The daemon's wire protocol: one JSON object per line over a Unix stream socket.

Requests (client -> daemon), one per connection:
    {"op": "submit", "job": "cao_import", "reprocess": false, "wait": true, "trigger": "timer"}
    {"op": "status"}            {"op": "list"}            {"op": "cancel", "run": "ID"}
Replies: {"ok": true, ...} or {"ok": false, "error": "..."}; a waiting submit then gets
event lines {"event": "phase"|"line"|"status", ...} and a last {"event": "finished", "run": {...}}.
Requests name configured jobs only; nothing in a request is ever used as a path.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lexi_maint.errors import ApiError

MAX_LINE = 64 * 1024
_JOB = re.compile(r"[A-Za-z0-9_-]+")
_RUN = re.compile(r"[A-Za-z0-9_.-]+")


TRIGGERS = ("timer", "operator")  # what a client says started it (default: operator)


@dataclass(frozen=True)
class Submit:
    job: str
    reprocess: bool
    wait: bool
    trigger: str = "operator"


@dataclass(frozen=True)
class Cancel:
    run: str


@dataclass(frozen=True)
class Status:
    pass


@dataclass(frozen=True)
class ListRuns:
    pass


Request = Submit | Cancel | Status | ListRuns


def parse_request(line: bytes, jobs: frozenset[str]) -> Request:
    if len(line) > MAX_LINE:
        raise ApiError("request too long")
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ApiError(f"request is not JSON: {exc}") from None
    except RecursionError:  # 30,000 nested brackets fit in one line
        raise ApiError("request is nested too deeply") from None
    if not isinstance(data, dict):
        raise ApiError("request must be a JSON object")
    op = data.get("op")
    if op == "submit":
        return _submit(data, jobs)
    if op == "cancel":
        run = data.get("run")
        if not isinstance(run, str) or not _RUN.fullmatch(run):
            raise ApiError("cancel needs a run id")
        return Cancel(run)
    if op == "status":
        return Status()
    if op == "list":
        return ListRuns()
    raise ApiError(f"unknown op {op!r}; use submit, status, list or cancel")


def _submit(data: dict[str, Any], jobs: frozenset[str]) -> Submit:
    unknown = set(data) - {"op", "job", "reprocess", "wait", "trigger"}
    if unknown:
        raise ApiError(f"unknown fields in submit: {', '.join(sorted(unknown))}")
    job = data.get("job")
    if not isinstance(job, str) or not _JOB.fullmatch(job):
        raise ApiError("submit needs a job name ([A-Za-z0-9_-]+)")
    if job not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise ApiError(f"no job named {job!r} in the daemon's configuration (configured: {known})")
    flags = {k: data.get(k, False) for k in ("reprocess", "wait")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise ApiError("reprocess and wait must be true or false")
    trigger = data.get("trigger", "operator")
    if trigger not in TRIGGERS:
        raise ApiError(f"trigger must be one of {', '.join(TRIGGERS)}")
    return Submit(job, flags["reprocess"], flags["wait"], trigger)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode("utf-8") + b"\n"
