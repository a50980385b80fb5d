"""What model calls used: token counts and their price, per call, document and run.

Pure values. `Usage` adds up; `UsageMeter` collects it for one stage in one worker and is
read by the worker when the document is done, whether it succeeded or failed (a failed
document has still been paid for).

`completion_tokens` includes `reasoning_tokens` (the provider bills both as output);
`cache_hit_tokens` is the part of `prompt_tokens` served from the provider's context
cache. `cached_answers` counts answers taken from lexi-maint's own response cache: no call,
no tokens, no cost; `reused_cost` is what those answers cost when they were bought (shown
as "reused from cache", never added to what was spent).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Tokens:
    """The token counts the API reported for one answered call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit_tokens: int = 0


@dataclass(frozen=True)
class Usage:
    calls: int = 0  # HTTP calls answered by the API (200), valid or not
    cached_answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cache_hit_tokens: int = 0
    cost: float = 0.0
    currency: str = ""
    reused_cost: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            cached_answers=self.cached_answers + other.cached_answers,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cache_hit_tokens=self.cache_hit_tokens + other.cache_hit_tokens,
            cost=self.cost + other.cost,
            currency=self.currency or other.currency,
            reused_cost=self.reused_cost + other.reused_cost,
        )

    @property
    def empty(self) -> bool:
        return self.calls == 0 and self.cached_answers == 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of_call(cls, tokens: Tokens, cost: float, currency: str) -> Usage:
        return cls(
            calls=1,
            prompt_tokens=tokens.prompt_tokens,
            completion_tokens=tokens.completion_tokens,
            reasoning_tokens=tokens.reasoning_tokens,
            cache_hit_tokens=tokens.cache_hit_tokens,
            cost=cost,
            currency=currency,
        )

    @classmethod
    def of_reuse(cls, cost: float, currency: str) -> Usage:
        """An answer taken from the response cache; `cost` is what it cost when bought."""
        return cls(cached_answers=1, reused_cost=cost, currency=currency)

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cost"] = round(self.cost, 6)
        data["reused_cost"] = round(self.reused_cost, 6)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Usage:
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class UsageMeter:
    """Adds up the usage of one stage's calls (one worker, one document)."""

    def __init__(self, currency: str = "") -> None:
        self.total = Usage(currency=currency)

    def add(self, usage: Usage) -> None:
        self.total = self.total + usage


@runtime_checkable
class MetersUsage(Protocol):
    """A stage that calls a paid API says what its calls used (read after the document)."""

    def usage(self) -> Usage: ...
