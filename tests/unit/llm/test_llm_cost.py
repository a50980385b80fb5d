from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lexi_maint.config.llm import ModelPrice, Prices
from lexi_maint.llm.cost import call_cost, in_offpeak, priced_usage
from lexi_maint.llm.usage import Tokens, Usage

PRICES = Prices(
    currency="USD",
    models={"m": ModelPrice(input_cache_hit=0.1, input_cache_miss=1.0, output=2.0)},
    offpeak_start=16 * 60 + 30,
    offpeak_end=30,
    offpeak_factor=0.25,
)
NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_prompt_tokens_are_split_into_cache_hits_and_misses() -> None:
    tokens = Tokens(prompt_tokens=1_000_000, completion_tokens=500_000, reasoning_tokens=400_000,
                    cache_hit_tokens=250_000)  # fmt: skip
    # 0.25M hits x 0.1 + 0.75M misses x 1.0 + 0.5M out x 2.0 (reasoning is inside completion)
    assert call_cost(PRICES, "m", tokens, NOON) == pytest.approx(0.025 + 0.75 + 1.0)


def test_hits_beyond_the_prompt_are_not_credited() -> None:
    tokens = Tokens(prompt_tokens=100, cache_hit_tokens=400)
    assert call_cost(PRICES, "m", tokens, NOON) == pytest.approx(100 * 0.1 / 1e6)


def test_an_unpriced_model_costs_nothing() -> None:
    assert call_cost(PRICES, "other", Tokens(prompt_tokens=10**6), NOON) == 0.0


@pytest.mark.parametrize(
    ("hour", "minute", "inside"),
    [(16, 29, False), (16, 30, True), (23, 59, True), (0, 0, True), (0, 29, True), (0, 30, False)],
)
def test_the_offpeak_window_wraps_past_midnight(hour: int, minute: int, inside: bool) -> None:
    assert in_offpeak(PRICES, datetime(2026, 1, 5, hour, minute, tzinfo=UTC)) is inside


def test_offpeak_is_judged_in_utc_and_applies_the_factor() -> None:
    beijing = timezone(timedelta(hours=8))
    late = datetime(2026, 1, 6, 1, 0, tzinfo=beijing)  # 17:00 UTC the day before
    tokens = Tokens(prompt_tokens=10**6)
    assert call_cost(PRICES, "m", tokens, late) == pytest.approx(0.25)
    assert not in_offpeak(replace(PRICES, offpeak_start=0, offpeak_end=0), late)


def test_priced_usage_counts_one_call_in_the_configured_currency() -> None:
    usage = priced_usage(PRICES, "m", Tokens(10, 20, 5, 3), NOON)
    assert usage == Usage(calls=1, prompt_tokens=10, completion_tokens=20, reasoning_tokens=5,
                          cache_hit_tokens=3, cost=usage.cost, currency="USD")  # fmt: skip
    assert usage.cost == pytest.approx((3 * 0.1 + 7 * 1.0 + 20 * 2.0) / 1e6)


def test_usage_adds_up_and_round_trips_through_json() -> None:
    a = Usage(calls=2, prompt_tokens=10, cost=0.5, currency="USD")
    b = Usage(cached_answers=3, completion_tokens=7, cost=0.25)
    total = a + b
    assert (total.calls, total.cached_answers, total.total_tokens) == (2, 3, 17)
    assert total.cost == 0.75 and total.currency == "USD"
    assert Usage.from_json(total.to_json()) == total
    assert Usage().empty and not total.empty
