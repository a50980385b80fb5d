"""Pricing one answered call from its token counts and `[llm.prices]` (pure).

cost = (cache-hit prompt tokens x input_cache_hit + the other prompt tokens x
input_cache_miss + completion tokens x output) / 1,000,000, times `offpeak_factor` when
the call finished inside the off-peak window (UTC; the window may wrap past midnight).
Reasoning tokens are part of the completion tokens and are not charged twice.
"""

from __future__ import annotations

from datetime import UTC, datetime

from lexi_maint.config.llm import Prices
from lexi_maint.llm.usage import Tokens, Usage

PER = 1_000_000


def in_offpeak(prices: Prices, when: datetime) -> bool:
    utc = when.astimezone(UTC)
    minute = utc.hour * 60 + utc.minute
    start, end = prices.offpeak_start, prices.offpeak_end
    if start == end:
        return False
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def call_cost(prices: Prices, model: str, tokens: Tokens, when: datetime) -> float:
    price = prices.models.get(model)
    if price is None:  # config validation requires a price for both models
        return 0.0
    hits = min(tokens.cache_hit_tokens, tokens.prompt_tokens)
    cost = (
        hits * price.input_cache_hit
        + (tokens.prompt_tokens - hits) * price.input_cache_miss
        + tokens.completion_tokens * price.output
    ) / PER
    return cost * prices.offpeak_factor if in_offpeak(prices, when) else cost


def priced_usage(prices: Prices, model: str, tokens: Tokens, when: datetime) -> Usage:
    return Usage.of_call(tokens, call_cost(prices, model, tokens, when), prices.currency)
