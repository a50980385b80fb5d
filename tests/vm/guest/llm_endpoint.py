"""The site's LLM endpoint in the bare-install scenario: the project's OpenAI-compatible test
server on loopback, accepting the key in KEY_FILE (read here, never printed or passed on).

Run from the checkout with the lexi-maint venv's python:
``python -m tests.vm.guest.llm_endpoint KEY_FILE URL_FILE``; writes its base URL to URL_FILE
once it listens, serves until SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from tests.llm_server.latency import LatencyModel
from tests.llm_server.server import FakeLlmServer

# per call: long enough that the run lasts a while for the observers, short enough for CI
LATENCY = "fixed:0.2"


def main() -> int:
    key = Path(sys.argv[1]).read_text().strip()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with FakeLlmServer(api_key=key, latency=LatencyModel.parse(LATENCY)) as server:
        Path(sys.argv[2]).write_text(server.url + "\n")
        print(f"listening on {server.url}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
