"""Admission by priority tier: when the queue or the provider budget runs out, shed from the bottom.

Tasks carry a tier, 0 the top (e.g. critical), the last the lowest (e.g.
batch), and a tenant. Each tier has a *share*: how full the shared resources
may be for the tier still to be admitted. The top tier's share is 1.0; the
shares fall toward the lowest tier. Three lanes of pressure, each a number
that reads "how full" (1.0 = full):

queue
    The tasks waiting for an agent over the queue limit. Every tier, the top
    one included, is shed when the queue is more than its share full: the
    limit is a hard cap for the top tier and a soft one below.
provider
    The share of the provider's budget spent: one minus the emptiest of its
    token buckets' levels over their size. It sheds tiers below the top only
    — the budget is kept for the top tier, whose calls wait their turn.
tenant
    A tenant over its own token budget (per minute or per day) is in
    overdraft, measured in budgets. Its lowest tier is shed as soon as it is
    over; each further ``tenant_step`` of overdraft sheds the next tier up;
    its top tier is never shed for its budget.

Hysteresis: a tier shed by the queue or a provider lane stays shed until
that lane's pressure falls below its share times ``1 - hysteresis``, so the
admission does not flap at the threshold. Each lane keeps its own states,
and every decision updates every tier of the lane it reads; since shares
fall toward the bottom, the tiers being shed are always the lowest ones — a
tier is never shed while a tier below it is admitted (the property tests
check this).

Pure, like the rest of the core: the shell passes ``now`` and the
observation, and charges tenants' tokens as its calls are granted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sim.policies.llm.bucket import ProviderBucket, TokenBucket

__all__ = [
    "AdmissionConfig",
    "AdmissionDecision",
    "AdmissionObservation",
    "TenantBudgets",
    "TenantLimits",
    "TierAdmission",
    "budget_used",
    "shed_tiers",
]

#: Why a task was shed (the ``reason`` of a shed row).
QUEUE, PROVIDER, TENANT = "queue", "provider", "tenant_budget"


@dataclass(frozen=True, slots=True)
class AdmissionConfig:
    """The admission's settings.

    ``shares`` per tier, top first: the top's is 1.0 and they never rise
    toward the bottom. ``queue_limit``: waiting tasks at which even the top
    tier is shed (None: the queue never sheds). ``hysteresis``: the fraction
    of a share the pressure must fall below it before a shed tier is admitted
    again. ``tenant_step``: overdraft, in budgets, between one tier of an
    over-budget tenant being shed and the next.
    """

    shares: tuple[float, ...]
    queue_limit: int | None = None
    hysteresis: float = 0.1
    tenant_step: float = 0.1

    def __post_init__(self) -> None:
        if not self.shares or self.shares[0] != 1.0:
            raise ValueError("shares: expected the top tier's share first, and it is 1.0")
        if any(b > a for a, b in itertools.pairwise(self.shares)):
            raise ValueError("shares: expected shares that never rise toward the lowest tier")
        if any(s <= 0 for s in self.shares):
            raise ValueError("shares: expected positive shares")
        if self.queue_limit is not None and self.queue_limit < 1:
            raise ValueError("queue_limit: expected at least 1")
        if not 0 <= self.hysteresis < 1:
            raise ValueError("hysteresis: expected a fraction in [0, 1)")
        if self.tenant_step <= 0:
            raise ValueError("tenant_step: expected a positive overdraft step")


@dataclass(frozen=True, slots=True)
class AdmissionObservation:
    """What the shell sees when a task arrives.

    ``tier``: the task's, 0 the top. ``queue_depth``: tasks waiting for an
    agent. ``provider``: the account its calls spend (None: it makes none)
    and ``provider_used`` that account's budget spent, 0..1 (budget_used).
    ``tenant_overdraft``: its tenant's overdraft in budgets (0: within).
    """

    tier: int
    queue_depth: int
    provider: str | None = None
    provider_used: float = 0.0
    tenant_overdraft: float = 0.0


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """Admit the task, or shed it and say which lane did (queue, provider, tenant_budget)."""

    admit: bool
    reason: str = ""


_ADMIT = AdmissionDecision(True)


class TierAdmission:
    """The admission policy with its hysteresis states (one list of flags per lane)."""

    def __init__(self, config: AdmissionConfig) -> None:
        self.config = config
        #: Per lane ("queue", "provider:<name>"): whether each tier is being shed.
        self.shedding: dict[str, list[bool]] = {}

    @property
    def tiers(self) -> int:
        return len(self.config.shares)

    def decide(self, obs: AdmissionObservation) -> AdmissionDecision:
        """Admit or shed one arriving task (updates the lanes the observation reads)."""
        if not 0 <= obs.tier < self.tiers:
            raise ValueError(f"tier {obs.tier}: expected 0..{self.tiers - 1}")
        limit = self.config.queue_limit
        if limit is not None:
            flags = self._update("queue", obs.queue_depth / limit, top=True)
            if flags[obs.tier]:
                return AdmissionDecision(False, QUEUE)
        if obs.provider is not None:
            flags = self._update(f"provider:{obs.provider}", obs.provider_used, top=False)
            if flags[obs.tier]:
                return AdmissionDecision(False, PROVIDER)
        if obs.tier > 0 and self.tenant_sheds(obs.tier, obs.tenant_overdraft):
            return AdmissionDecision(False, TENANT)
        return _ADMIT

    def tenant_sheds(self, tier: int, overdraft: float) -> bool:
        """Whether an over-budget tenant's *tier* is shed (never the top; the lowest first)."""
        if tier == 0 or overdraft <= 0:
            return False
        rank_from_bottom = self.tiers - 1 - tier  # 0 for the lowest tier
        return overdraft > rank_from_bottom * self.config.tenant_step

    def _update(self, lane: str, pressure: float, *, top: bool) -> list[bool]:
        """Bring every tier's flag of *lane* to *pressure*; the top tier only when *top*."""
        flags = self.shedding.get(lane)
        if flags is None:
            flags = self.shedding[lane] = [False] * self.tiers
        keep = 1.0 - self.config.hysteresis
        for tier, share in enumerate(self.config.shares):
            if tier == 0 and not top:
                continue
            if flags[tier]:
                flags[tier] = pressure >= share * keep
            else:
                flags[tier] = pressure >= share
        return flags


def budget_used(bucket: ProviderBucket, now: float) -> float:
    """The share of a provider's budget spent at *now*: 1 - the emptiest bucket's fill.

    Read without refilling the buckets (the level they would have at *now*),
    so observing never changes what the provider later grants. A provider
    with no token buckets (only a concurrency cap) reads as its calls in
    flight over the cap.
    """
    used = 0.0
    for token_bucket in bucket.buckets.values():
        used = max(used, 1.0 - _level_at(token_bucket, now) / token_bucket.burst)
    if bucket.concurrency is not None:
        used = max(used, bucket.in_flight / bucket.concurrency)
    return min(max(used, 0.0), 1.0)


def _level_at(bucket: TokenBucket, now: float) -> float:
    elapsed = now - bucket.updated
    return min(bucket.burst, bucket.level + max(elapsed, 0.0) * bucket.rate_per_s)


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """One tenant's token budget (input plus output tokens); None: that window is unlimited."""

    tokens_per_min: float | None = None
    tokens_per_day: float | None = None


class TenantBudgets:
    """Tenants' token spend against their budgets, as buckets that may go into debt.

    A tenant's tokens are charged when its calls are granted (the provider
    has taken them: they cannot be refused after the fact), so a bucket's
    level may fall below zero; it refills continuously at the budget's rate.
    The overdraft is the debt over the bucket's size, the larger of the
    minute and the day windows.
    """

    def __init__(self, limits: Mapping[str, TenantLimits]) -> None:
        self.buckets: dict[str, list[TokenBucket]] = {}
        for tenant, limit in limits.items():
            buckets = []
            if limit.tokens_per_min is not None:
                buckets.append(TokenBucket(limit.tokens_per_min))
            if limit.tokens_per_day is not None:
                per_day = limit.tokens_per_day
                buckets.append(TokenBucket(per_day / 1440.0, burst=per_day))
            if buckets:
                self.buckets[tenant] = buckets

    def charge(self, tenant: str, now: float, tokens: float) -> None:
        """The tenant's call was granted *tokens* at *now* (tenants with no budget: ignored)."""
        if tokens < 0 or math.isnan(tokens):
            raise ValueError("expected a non-negative token count")
        for bucket in self.buckets.get(tenant, ()):
            bucket.refill(now)
            bucket.level -= tokens

    def overdraft(self, tenant: str, now: float) -> float:
        """How far the tenant is over budget at *now*, in budgets (0.0: within)."""
        worst = 0.0
        for bucket in self.buckets.get(tenant, ()):
            worst = max(worst, -_level_at(bucket, now) / bucket.burst)
        return worst


def shed_tiers(
    admission: TierAdmission, tiers: Sequence[int], obs: AdmissionObservation
) -> list[int]:
    """The tiers among *tiers* that *obs*'s pressure would shed now (for tests and reports).

    Each tier is decided by a copy of the policy, so its own states do not move.
    """
    shed = []
    for tier in tiers:
        probe = TierAdmission(admission.config)
        probe.shedding = {lane: list(flags) for lane, flags in admission.shedding.items()}
        if not probe.decide(replace(obs, tier=tier)).admit:
            shed.append(tier)
    return shed
