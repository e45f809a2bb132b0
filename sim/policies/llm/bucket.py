"""A model provider's rate limits as continuously refilled token buckets.

Providers publish their limits per account and per minute — requests,
input tokens, output tokens — and enforce them as token buckets that refill
continuously (a limit of 60,000 tokens/min is 1,000 tokens back every
second, not 60,000 at the top of each minute), plus a cap on requests in
flight. A call is admitted only when every bucket has room for it at once;
otherwise the provider answers 429 and, like real APIs' ``retry-after``,
says how long until the call would fit.

Output tokens are charged when the call is admitted, at the size the call
will produce: providers reserve ``max_tokens`` up front and settle at the
end, and charging the actual size up front is that rule with a perfect
estimate. The policy is pure: the shell passes ``now`` in seconds and
reports when a call ends (``release``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MIN_WAIT_S", "Acquire", "ProviderBucket", "ProviderLimits", "TokenBucket"]

#: The shortest wait a refusal names (seconds); see TokenBucket.wait_for.
MIN_WAIT_S = 1e-6
#: Relative shortfall treated as float rounding, not as a lack of tokens.
_ROUNDING = 1e-9


class TokenBucket:
    """One limit: *per_min* units a minute, refilled continuously, holding at most *burst*.

    The bucket starts full. ``burst`` defaults to one minute's worth, which is
    how providers state their limits (a full minute's quota may be spent at once).
    """

    __slots__ = ("burst", "level", "rate_per_s", "updated")

    def __init__(self, per_min: float, burst: float | None = None) -> None:
        if per_min <= 0:
            raise ValueError("expected a positive limit per minute")
        self.rate_per_s = per_min / 60.0
        self.burst = per_min if burst is None else burst
        if self.burst <= 0:
            raise ValueError("expected a positive burst")
        self.level = self.burst
        self.updated = 0.0

    def refill(self, now: float) -> None:
        """Bring the level up to *now* (time never runs backwards for a bucket)."""
        if now > self.updated:
            self.level = min(self.burst, self.level + (now - self.updated) * self.rate_per_s)
            self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds from the last refill until *amount* fits; inf when it never can.

        A shortfall within rounding of the amount counts as room, and a wait is
        never shorter than ``MIN_WAIT_S``: a hint of 1e-15 s added to a clock at
        thousands of seconds would not move it, and a client obeying the hint
        would ask again at the same instant for ever.
        """
        if amount > self.burst * (1.0 + _ROUNDING):
            return math.inf
        missing = amount - self.level
        if missing <= _ROUNDING * max(amount, 1.0):
            return 0.0
        return max(missing / self.rate_per_s, MIN_WAIT_S)


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """One provider account's limits; None means that dimension is not limited."""

    requests_per_min: float | None = None
    input_tokens_per_min: float | None = None
    output_tokens_per_min: float | None = None
    concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Acquire:
    """The provider's answer to one call.

    ``granted``: admitted and charged. Otherwise a 429: ``wait_s`` is how long
    until the token buckets would admit the call (0.0 when only the
    concurrency cap refused it — that wait depends on calls ending, which the
    provider cannot know — and inf when the call is larger than a bucket), and
    ``binding`` names the limit that refused it.
    """

    granted: bool
    wait_s: float = 0.0
    binding: str = ""


_GRANTED = Acquire(True)


class ProviderBucket:
    """All of one account's limits, shared by every agent that calls its models."""

    __slots__ = ("buckets", "concurrency", "in_flight", "limits")

    def __init__(self, limits: ProviderLimits) -> None:
        self.limits = limits
        self.buckets: dict[str, TokenBucket] = {}
        if limits.requests_per_min is not None:
            self.buckets["requests"] = TokenBucket(limits.requests_per_min)
        if limits.input_tokens_per_min is not None:
            self.buckets["input_tokens"] = TokenBucket(limits.input_tokens_per_min)
        if limits.output_tokens_per_min is not None:
            self.buckets["output_tokens"] = TokenBucket(limits.output_tokens_per_min)
        self.concurrency = limits.concurrency
        self.in_flight = 0

    def try_acquire(self, now: float, input_tokens: float, output_tokens: float) -> Acquire:
        """Admit one call of this size at *now*, or say why not and for how long."""
        need = {"requests": 1.0, "input_tokens": input_tokens, "output_tokens": output_tokens}
        wait, binding = 0.0, ""
        for name, bucket in self.buckets.items():
            bucket.refill(now)
            w = bucket.wait_for(need[name])
            if w > wait:
                wait, binding = w, name
        if wait > 0:
            return Acquire(False, wait, binding)
        if self.concurrency is not None and self.in_flight >= self.concurrency:
            return Acquire(False, 0.0, "concurrency")
        for name, bucket in self.buckets.items():
            bucket.level -= need[name]
        self.in_flight += 1
        return _GRANTED

    def release(self) -> None:
        """A call admitted earlier has ended (its concurrency slot is free again)."""
        if self.in_flight <= 0:
            raise ValueError("release without a matching acquire")
        self.in_flight -= 1
