"""The pure half of the LLM preflight: what an answer to GET /models means."""

from __future__ import annotations

import json

import pytest

from lexi_maint.config.llm import LlmConfig
from lexi_maint.llm.probe import LlmProbeError, ProbeTarget, Problem, interpret

TARGET = ProbeTarget.of(LlmConfig(provider="deepseek", base_url="https://api.deepseek.com/"))


def listing(*ids: str) -> bytes:
    return json.dumps({"object": "list", "data": [{"id": i} for i in ids]}).encode()


def problem(status: int, body: bytes) -> LlmProbeError:
    with pytest.raises(LlmProbeError) as caught:
        interpret(status, body, TARGET, key_source="key file /etc/k")
    return caught.value


def test_the_target_asks_the_listing_once_per_model() -> None:
    assert TARGET.url == "https://api.deepseek.com/models"
    assert TARGET.models == ("deepseek-chat", "deepseek-reasoner")
    same = ProbeTarget.of(LlmConfig(chunk_model="m", analysis_model="m"))
    assert same.models == ("m",)


def test_a_listing_with_both_models() -> None:
    body = listing("deepseek-chat", "deepseek-reasoner", "other")
    assert interpret(200, body, TARGET) == ["deepseek-chat", "deepseek-reasoner", "other"]


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (401, b'{"error": {"message": "Authentication Fails"}}', Problem.KEY_REJECTED,
         "rejected the API key (HTTP 401: Authentication Fails); check key file /etc/k"),
        (403, b"", Problem.KEY_REJECTED, "HTTP 403"),
        (402, b'{"error": {"message": "Insufficient Balance"}}', Problem.NO_BALANCE,
         "no balance left"),
        (404, b"not found", Problem.HTTP_ERROR, "is base_url right?"),
        (503, b"busy", Problem.HTTP_ERROR, "answered HTTP 503: busy"),
        (200, b"<html>", Problem.HTTP_ERROR, "not with a model list"),
        (200, b'{"data": {"id": 1}}', Problem.HTTP_ERROR, "not with a model list"),
        (200, listing("deepseek-chat"), Problem.UNKNOWN_MODEL,
         "does not offer deepseek-reasoner (it lists: deepseek-chat)"),
    ],
)  # fmt: skip
def test_each_failure_has_its_own_message(
    status: int, body: bytes, kind: Problem, words: str
) -> None:
    error = problem(status, body)
    assert error.problem is kind
    assert words in str(error), str(error)
