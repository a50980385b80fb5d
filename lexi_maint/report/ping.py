"""Healthchecks-style pings (adapter: the only module that sends them).

The convention borgmatic and many cron wrappers use: `POST URL/start` when a run starts,
`POST URL` when it succeeded, `POST URL/fail` when it did not; the body is the run's
summary (Healthchecks shows it with the ping; it keeps the first 100 kB). Each attempt is
bounded by `ping_timeout`, failed attempts are retried `ping_attempts` times with a short
backoff, and a ping that still fails is logged: it never fails or delays the run's outcome.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

import httpx

from lexi_maint.config.alerts import AlertsConfig
from lexi_maint.report.progress import format_started, format_summary
from lexi_maint.run.events import Event, RunFinished, RunStarted

log = logging.getLogger(__name__)

MAX_BODY = 100_000  # bytes Healthchecks keeps of a ping body


class Ping(StrEnum):
    START = "start"
    SUCCESS = "success"
    FAIL = "fail"


def ping_target(base: str, ping: Ping) -> str:
    """URL/start, URL, URL/fail (pure)."""
    base = base.rstrip("/")
    return base if ping is Ping.SUCCESS else f"{base}/{ping.value}"


def outcome_ping(exit_status: int) -> Ping:
    return Ping.SUCCESS if exit_status == 0 else Ping.FAIL


class Pinger:
    def __init__(
        self,
        config: AlertsConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._transport = transport
        self._sleep = sleep

    @property
    def enabled(self) -> bool:
        return self._config.ping_url is not None

    def send(self, ping: Ping, body: str) -> bool:
        """POST the ping; True once an attempt got a 2xx answer. Never raises."""
        if self._config.ping_url is None:
            return False
        url = ping_target(self._config.ping_url, ping)
        data = body.encode("utf-8")[:MAX_BODY]
        last = ""
        with httpx.Client(timeout=self._config.ping_timeout, transport=self._transport) as client:
            for attempt in range(1, self._config.ping_attempts + 1):
                try:
                    response = client.post(url, content=data)
                    if response.is_success:
                        return True
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                if attempt < self._config.ping_attempts:
                    self._sleep(min(2.0**attempt, 10.0))
        log.warning("ping %s failed after %d attempts (last: %s); the run is not affected",
                    _redacted(url), self._config.ping_attempts, last)  # fmt: skip
        return False


def _redacted(url: str) -> str:
    """A ping URL without its secret part (the UUID or key is the credential)."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{host}/…"


def daemon_report(
    job: str, run_id: str, trigger: str, outcome: str, exit_status: int, message: str,
    downtime: float | None,
) -> str:  # fmt: skip
    """The body of the daemon's end-of-run ping (pure)."""
    down = "not restored" if downtime is None else f"{downtime:.0f} s"
    return (
        f"job {job} · run {run_id} · started by {trigger}\n"
        f"result: {outcome} (exit {exit_status}): {message}\n"
        f"service downtime: {down}\n"
        f"details: lexi-maint runs {job}; lexi-maint status {job} --failed\n"
    )


class PingQueue:
    """Sends pings in order from one background thread, so a slow or dead ping URL never
    holds up a run (or the daemon's watchdog); `close` waits for what is queued, which
    `ping_attempts` x `ping_timeout` (plus backoff) bounds."""

    def __init__(self, pinger: Pinger) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._pinger = pinger
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ping")

    def send(self, ping: Ping, body: str) -> None:
        if self._pinger.enabled:
            self._pool.submit(self._pinger.send, ping, body)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class PingReporter:
    """Run events -> pings, for a foreground run (the daemon pings for its own runs)."""

    def __init__(self, queue: PingQueue) -> None:
        self._queue = queue
        self.started = False
        self.finished = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = True
            self._queue.send(Ping.START, format_started(event))
        elif isinstance(event, RunFinished):
            self.finished = True
            code = event.summary.exit_code if not event.summary.signal else 1
            self._queue.send(outcome_ping(code), format_summary(event.summary))

    def failed(self, reason: str) -> None:
        """The run ended on an error after it started, before its summary."""
        if self.started and not self.finished:
            self.finished = True
            self._queue.send(Ping.FAIL, reason)

    def close(self) -> None:
        self._queue.close()
