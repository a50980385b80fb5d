"""Simulated call latency: a distribution per model, drawn deterministically per request.

The draw is seeded by the request's sha256, so the same request waits the same time in
every run of a benchmark (the benchmark's shapes see the same total latency).

Specs: "fixed:S", "uniform:LOW,HIGH", "lognormal:MEDIAN,SIGMA" (seconds), or
"tokens:TTFT,RATE": time to first token plus the answer's output tokens (reasoning
included) at RATE tokens per second, as a real model streams them; each optionally per
model: "deepseek-chat=tokens:1,60;deepseek-reasoner=tokens:2,40".
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Distribution:
    kind: str  # fixed | uniform | lognormal | tokens
    a: float = 0.0
    b: float = 0.0

    def draw(self, rng: random.Random, output_tokens: int = 0) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        if self.kind == "tokens":
            return self.a + output_tokens / self.b
        return self.a * math.exp(self.b * rng.gauss(0.0, 1.0))

    @classmethod
    def parse(cls, spec: str) -> Distribution:
        kind, _, args = spec.partition(":")
        numbers = [float(x) for x in args.split(",") if x.strip()]
        wanted = {"fixed": 1, "uniform": 2, "lognormal": 2, "tokens": 2}
        if wanted.get(kind) != len(numbers) or (kind == "tokens" and numbers[1] <= 0):
            raise ValueError(
                f"bad latency spec {spec!r}: fixed:S, uniform:A,B, lognormal:M,SIGMA, "
                "tokens:TTFT,RATE (RATE > 0)"
            )
        return cls(kind, *numbers)


@dataclass(frozen=True)
class LatencyModel:
    default: Distribution = Distribution("fixed", 0.0)
    per_model: Mapping[str, Distribution] = field(default_factory=dict)
    scale: float = 1.0

    def seconds(self, model: str, key: str, output_tokens: int = 0) -> float:
        rng = random.Random(key)
        dist = self.per_model.get(model, self.default)
        return max(0.0, dist.draw(rng, output_tokens) * self.scale)

    @classmethod
    def parse(cls, spec: str, scale: float = 1.0) -> LatencyModel:
        default = Distribution("fixed", 0.0)
        per_model: dict[str, Distribution] = {}
        for part in filter(None, (p.strip() for p in spec.split(";"))):
            model, sep, dist = part.rpartition("=")
            if sep:
                per_model[model] = Distribution.parse(dist)
            else:
                default = Distribution.parse(dist)
        return cls(default, per_model, scale)
