"""A client of lexi.service that asks its health URL every 100 ms: inside the VM (the
scenarios), or on the host through a port forward (bench/availability.py).

Each request opens a new connection (like a browser after a pause) with a 5 s timeout: the
guest runs under TCG, about 12x slower than native, so 5 s here is about 0.4 s on real
hardware; a request not answered by then counts as failed.
`Prober.summary()` gives failed requests, seconds of downtime (first failure to the next
success, added up), and latency percentiles, optionally within a time window of the prober's
clock (time.monotonic by default; the host's benchmark uses time.time to join the guest's
markers). `cpu_s` is the CPU time the probing thread used.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTERVAL = 0.1
TIMEOUT = 5.0


@dataclass(frozen=True)
class Probe:
    at: float  # the prober's clock when sent
    ok: bool
    latency: float
    error: str


class Prober:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        path: str = "/health",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = (host, port, path)
        self._clock = clock
        self.probes: list[Probe] = []
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        host, port, path = self._target
        cpu = time.thread_time()
        next_at = time.monotonic()
        while not self._stop.is_set():
            at, sent = self._clock(), time.monotonic()
            ok, error = False, ""
            try:
                conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
                error = "" if ok else f"HTTP {response.status}"
                conn.close()
            except (OSError, http.client.HTTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.probes.append(Probe(at, ok, time.monotonic() - sent, error))
            next_at = max(next_at + INTERVAL, time.monotonic())
            self._stop.wait(next_at - time.monotonic())
        self.cpu_s = time.thread_time() - cpu

    def summary(self, start: float = 0.0, end: float = float("inf")) -> dict[str, Any]:
        window = [p for p in self.probes if start <= p.at <= end]
        latencies = sorted(p.latency for p in window if p.ok)
        return {
            "requests": len(window),
            "failed": sum(1 for p in window if not p.ok),
            "downtime_s": round(downtime(window), 2),
            "p50_ms": round(_pct(latencies, 0.50) * 1000, 1),
            "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
            "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 1),
            "errors": sorted({p.error for p in window if not p.ok})[:5],
        }


def downtime(probes: list[Probe]) -> float:
    """Seconds from each first failed probe to the next successful one, added up."""
    total, down_since = 0.0, None
    for probe in probes:
        if not probe.ok and down_since is None:
            down_since = probe.at
        elif probe.ok and down_since is not None:
            total += probe.at - down_since
            down_since = None
    if down_since is not None and probes:
        total += probes[-1].at - down_since
    return total


def _pct(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(fraction * len(values)))]


def gunicorn_workers(main_pid: int) -> int:
    """Children of the gunicorn master (its workers)."""
    try:
        children = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text().split()
    except OSError:
        return 0
    return len(children)
