"""Is the model API up? The preflight's `GET <base_url>/models`, read as up or down.

The runner's probe while a run is paused on a model API outage (`pipeline/outage.py`).
Up means the API answers at all: 2xx, and also 4xx (a rejected key is not an outage: the
next document meets it and stops the job). Down: no answer (unreachable, TLS, timeout),
429 or 5xx. The request itself is `llm/probe.py`'s, so both read the endpoint one way.
"""

from __future__ import annotations

import ssl

from lexi_maint.config.llm import LlmConfig
from lexi_maint.llm.probe import LlmProbeError, ProbeTarget, fetch_listing
from lexi_maint.probe import Health, Probe
from lexi_maint.secretfile import Secret

PROBE_TIMEOUT = 10.0


def api_probe(config: LlmConfig, key: Secret, ssl_context: ssl.SSLContext | None = None) -> Probe:
    target = ProbeTarget.of(config)

    def probe() -> Health:
        try:
            status, _ = fetch_listing(target, key, deadline=PROBE_TIMEOUT, ssl_context=ssl_context)
        except LlmProbeError as exc:
            return Health(False, f"GET {target.url}: {exc}")
        if status == 429 or status >= 500:
            return Health(False, f"GET {target.url} answered HTTP {status}")
        return Health(True)

    return probe
