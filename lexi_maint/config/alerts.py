"""The [alerts] section: a Healthchecks-style ping URL and the command OnFailure runs."""

from __future__ import annotations

from dataclasses import dataclass

from lexi_maint.config.table import Table


@dataclass(frozen=True)
class AlertsConfig:
    ping_url: str | None = None  # e.g. https://hc-ping.com/UUID: URL/start, URL, URL/fail
    ping_timeout: float = 10.0  # seconds per attempt
    ping_attempts: int = 3  # attempts per ping; a ping never fails the run
    on_failure: tuple[str, ...] = ()  # argv run by lexi-notify@JOB.service (OnFailure=)
    on_failure_timeout: float = 60.0


def parse_alerts(top: Table) -> AlertsConfig:
    default = AlertsConfig()
    with top.sub("alerts") as t:
        url = t.string("ping_url", "") or None
        if url is not None and not url.startswith(("http://", "https://")):
            t.problem("ping_url", f"must be an http:// or https:// URL, got {url!r}")
        config = AlertsConfig(
            ping_url=url,
            ping_timeout=t.duration("ping_timeout", default.ping_timeout),
            ping_attempts=t.integer("ping_attempts", default.ping_attempts, low=1, high=10),
            on_failure=t.string_list("on_failure", ()) if t.has("on_failure") else (),
            on_failure_timeout=t.duration("on_failure_timeout", default.on_failure_timeout),
        )
    return config
