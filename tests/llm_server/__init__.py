"""An OpenAI-compatible chat-completions server for tests and benchmarks (real HTTP, loopback).

    with FakeLlmServer(LexiResponder(), latency=LatencyModel.parse("lognormal:0.2,0.4")) as s:
        s.inject("429", retry_after="0.01")          # the next call gets a 429
        ... point [llm] base_url at s.url ...
        s.count(), s.answered_keys()                  # what the server saw

See server.py for the faults it can inject and responder.py for the generated answers.
"""

from tests.llm_server.latency import LatencyModel
from tests.llm_server.responder import LexiResponder
from tests.llm_server.server import API_KEY, LISTING, MODELS, Call, FakeLlmServer, Fault

__all__ = [
    "API_KEY",
    "LISTING",
    "MODELS",
    "Call",
    "FakeLlmServer",
    "Fault",
    "LatencyModel",
    "LexiResponder",
]
