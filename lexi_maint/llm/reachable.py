"""Is the model API up? `GET <base_url>/models`, which lists models and spends no tokens.

The runner's probe while a run is paused on a model API outage (`pipeline/outage.py`).
Up means the API answers at all: 2xx, and also 4xx (a rejected key is not an outage: the
next document meets it and stops the job). Down: no connection, a timeout, 429 or 5xx.
"""

from __future__ import annotations

import ssl

import httpx

from lexi_maint.llm.config import LlmConfig
from lexi_maint.llm.keys import ApiKey
from lexi_maint.probe import Health, Probe

PROBE_TIMEOUT = 10.0


def api_probe(config: LlmConfig, key: ApiKey, ssl_context: ssl.SSLContext | None = None) -> Probe:
    url = config.base_url.rstrip("/") + "/models"
    timeout = httpx.Timeout(PROBE_TIMEOUT, connect=min(config.connect_timeout, PROBE_TIMEOUT))
    verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True

    def probe() -> Health:
        headers = {"Authorization": f"Bearer {key.reveal()}", "Accept": "application/json"}
        try:
            with httpx.Client(timeout=timeout, verify=verify) as client:
                status = client.get(url, headers=headers).status_code
        except httpx.HTTPError as exc:
            detail = key.redact(str(exc)) or "the connection failed or was closed"
            return Health(False, f"GET {url}: {type(exc).__name__}: {detail}")
        if status == 429 or status >= 500:
            return Health(False, f"GET {url} answered HTTP {status}")
        return Health(True)

    return probe
