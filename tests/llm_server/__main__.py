"""Run the test server in its own process: python -m tests.llm_server [--latency SPEC] [--scale X].

Prints "listening on URL ..." once ready, then serves until SIGTERM/SIGINT or until its
parent dies. See server.py for the /_admin/ endpoints (stats, reset, inject).
"""

from __future__ import annotations

import argparse
import ctypes
import signal
import threading

from tests.llm_server.latency import LatencyModel
from tests.llm_server.server import API_KEY, FakeLlmServer

_PR_SET_PDEATHSIG = 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", default="fixed:0", help="e.g. lognormal:1.0,0.4")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeLlmServer(latency=LatencyModel.parse(args.latency, args.scale)) as server:
        print(f"listening on {server.url} (API key {API_KEY})", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
