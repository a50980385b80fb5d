"""The service's health URL, asked with httpx until it answers 2xx (adapter)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx


def wait_healthy(
    url: str,
    timeout: float,
    *,
    interval: float = 1.0,
    heartbeat: Callable[[], None] = lambda: None,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """Return the last answer's summary once the URL answers 2xx; raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=min(5.0, timeout), transport=transport) as client:
        while True:
            heartbeat()
            try:
                response = client.get(url)
                last = f"HTTP {response.status_code}"
                if response.is_success:
                    return last
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() + interval > deadline:
                raise TimeoutError(f"{url} not healthy within {timeout:g} s (last: {last})")
            time.sleep(interval)
