"""A stand-in for the Lexi AI web app: a WSGI app with a health URL (runs under gunicorn).

With LEXI_APP_BALLAST_MB set, every worker holds that much private memory (written, so
resident), like the real app's workers with their models loaded: the memory planner then
has real worker memory to free by shrinking.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

BALLAST = b"\x01" * (int(os.environ.get("LEXI_APP_BALLAST_MB", "0")) * 2**20)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/health":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
