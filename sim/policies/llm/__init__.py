"""The LLM fleet's decisions: a provider's rate limits and what a throttled call does.

Pure like the rest of the core, so the simulator and the live coordinator
enforce one limiter and one retry rule.
"""

from sim.policies.llm.bucket import Acquire, ProviderBucket, ProviderLimits, TokenBucket
from sim.policies.llm.retry import RATE_LIMITED, RetryDecision, RetryRule

__all__ = [
    "RATE_LIMITED",
    "Acquire",
    "ProviderBucket",
    "ProviderLimits",
    "RetryDecision",
    "RetryRule",
    "TokenBucket",
]
