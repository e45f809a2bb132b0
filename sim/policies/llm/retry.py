"""What a throttled call does next: wait and try again, or give up.

A 429 is retried after exponential backoff with *full jitter* (a uniform
draw between zero and the capped exponential, the variant AWS's
"Exponential Backoff And Jitter" shows spreads retries best) — or, when the
rule honours the provider's ``retry-after`` and the provider gave one, after
exactly that wait. The budget is a number of retries and a total wait; when
the next wait would exceed either, the call gives up and the shell fails the
attempt with reason ``rate_limited`` (the escalation policy takes it from
there). Randomness is injected: the shell passes the uniform draw in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RATE_LIMITED", "RetryDecision", "RetryRule"]

#: The failure reason of an attempt whose call exhausted its retry budget.
RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Retry after ``delay_s`` seconds, or give up (``retry`` False)."""

    retry: bool
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryRule:
    """Backoff after the n-th consecutive 429 of one call, and the budget (seconds, counts)."""

    base_s: float = 1.0
    factor: float = 2.0
    max_s: float = 60.0
    max_retries: int = 8
    max_wait_s: float = 600.0
    use_retry_after: bool = True

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s or self.factor < 1:
            raise ValueError("expected base > 0, max >= base and factor >= 1")
        if self.max_retries < 0 or self.max_wait_s < 0:
            raise ValueError("expected max_retries >= 0 and max_wait >= 0")

    def backoff_cap(self, retry: int) -> float:
        """The upper end of the jitter before the *retry*-th retry (1-based)."""
        return min(self.max_s, self.base_s * self.factor ** (retry - 1))

    def next(self, retry: int, waited_s: float, retry_after_s: float, u: float) -> RetryDecision:
        """The call was refused for the *retry*-th time after *waited_s* seconds of backoff.

        *retry_after_s* is the provider's hint (0.0: none; inf: the call can
        never fit), *u* a uniform draw in [0, 1).
        """
        if math.isinf(retry_after_s) or retry > self.max_retries:
            return RetryDecision(False)
        if self.use_retry_after and retry_after_s > 0:
            delay = retry_after_s
        else:
            delay = u * self.backoff_cap(retry)
        if waited_s + delay > self.max_wait_s:
            return RetryDecision(False)
        return RetryDecision(True, delay)
