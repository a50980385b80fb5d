"""Run the test server by hand: python -m tests.llm_server [--latency SPEC] [--scale X]."""

from __future__ import annotations

import argparse
import time

from tests.llm_server.latency import LatencyModel
from tests.llm_server.server import API_KEY, FakeLlmServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", default="fixed:0", help="e.g. lognormal:1.0,0.4")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    latency = LatencyModel.parse(args.latency, args.scale)
    with FakeLlmServer(latency=latency) as server:
        print(f"listening on {server.url} (API key {API_KEY}); Ctrl-C stops", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
