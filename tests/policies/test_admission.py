"""Admission by tier (sim.policies.admission): shed from the bottom, with hysteresis, purely.

The policy is compared with a naive model of its rule (each tier's flag per
lane, written out as the docstring states it) over generated sequences of
arrivals, and checked for the properties the shells rely on: the tiers shed
are always the lowest ones, nothing is shed while every lane is below the
lowest tier's share, the top tier is never shed for the provider or a
tenant's budget, and observing a provider never changes what it grants.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.admission import (
    AdmissionConfig,
    AdmissionObservation,
    TenantBudgets,
    TenantLimits,
    TierAdmission,
    budget_used,
    shed_tiers,
)
from sim.policies.llm import ProviderBucket, ProviderLimits


@st.composite
def configs(draw: st.DrawFn) -> AdmissionConfig:
    """1-5 tiers with shares falling from 1.0, a queue limit, a hysteresis and a tenant step."""
    rest = draw(st.lists(st.floats(0.05, 1.0), min_size=0, max_size=4))
    return AdmissionConfig(
        shares=(1.0, *sorted(rest, reverse=True)),
        queue_limit=draw(st.integers(1, 200)),
        hysteresis=draw(st.floats(0.0, 0.5)),
        tenant_step=draw(st.floats(0.01, 1.0)),
    )


def observations(tiers: int, limit: int) -> st.SearchStrategy[AdmissionObservation]:
    return st.builds(
        AdmissionObservation,
        tier=st.integers(0, tiers - 1),
        queue_depth=st.integers(0, 2 * limit),
        provider=st.sampled_from([None, "p", "q"]),
        provider_used=st.floats(0.0, 1.0),
        tenant_overdraft=st.floats(0.0, 2.0) | st.just(0.0),
    )


class NaiveAdmission:
    """The rule as the module docstring states it, one flag per (lane, tier), no shortcuts."""

    def __init__(self, config: AdmissionConfig) -> None:
        self.config = config
        self.flags: dict[tuple[str, int], bool] = {}

    def _lane(self, lane: str, pressure: float, tiers: range) -> None:
        keep = 1.0 - self.config.hysteresis
        for tier in tiers:
            share = self.config.shares[tier]
            was = self.flags.get((lane, tier), False)
            self.flags[(lane, tier)] = pressure >= (share * keep if was else share)

    def admit(self, obs: AdmissionObservation) -> str:
        n = len(self.config.shares)
        assert self.config.queue_limit is not None
        self._lane("queue", obs.queue_depth / self.config.queue_limit, range(n))
        if self.flags[("queue", obs.tier)]:
            return "queue"
        if obs.provider is not None:
            lane = f"provider:{obs.provider}"
            self._lane(lane, obs.provider_used, range(1, n))
            if obs.tier > 0 and self.flags[(lane, obs.tier)]:
                return "provider"
        if obs.tier > 0 and obs.tenant_overdraft > (n - 1 - obs.tier) * self.config.tenant_step:
            return "tenant_budget"
        return ""


@given(data=st.data(), config=configs())
def test_the_policy_decides_as_its_stated_rule(
    data: st.DataObject, config: AdmissionConfig
) -> None:
    """Model comparison over a generated sequence of arrivals (hysteresis states included)."""
    assert config.queue_limit is not None
    policy, naive = TierAdmission(config), NaiveAdmission(config)
    for obs in data.draw(
        st.lists(observations(len(config.shares), config.queue_limit), max_size=30)
    ):
        decision = policy.decide(obs)
        expected = naive.admit(obs)
        assert decision.admit == (expected == "")
        assert decision.reason == expected


@given(data=st.data(), config=configs())
def test_the_tiers_shed_are_always_the_lowest(data: st.DataObject, config: AdmissionConfig) -> None:
    """After any history, the tiers an observation sheds are a suffix: tier k shed => k+1 shed."""
    assert config.queue_limit is not None
    policy = TierAdmission(config)
    tiers = list(range(len(config.shares)))
    for obs in data.draw(st.lists(observations(len(tiers), config.queue_limit), max_size=25)):
        policy.decide(obs)
        shed = shed_tiers(policy, tiers, obs)
        assert shed == tiers[len(tiers) - len(shed) :]


@given(data=st.data(), config=configs())
def test_below_every_share_nothing_is_shed(data: st.DataObject, config: AdmissionConfig) -> None:
    """Queue and provider below the lowest tier's share, tenants within budget: all admitted."""
    assert config.queue_limit is not None
    lowest = config.shares[-1]
    policy = TierAdmission(config)
    below_depth = max(math.ceil(lowest * config.queue_limit) - 1, 0)
    obs = st.builds(
        AdmissionObservation,
        tier=st.integers(0, len(config.shares) - 1),
        queue_depth=st.integers(0, below_depth),
        provider=st.sampled_from([None, "p"]),
        provider_used=st.floats(0.0, lowest, exclude_max=True),
    )
    for one in data.draw(st.lists(obs, max_size=25)):
        assert policy.decide(one).admit


@given(data=st.data(), config=configs())
def test_the_top_tier_is_shed_by_the_queue_limit_only(
    data: st.DataObject, config: AdmissionConfig
) -> None:
    """Provider budget and tenant overdraft never shed tier 0; the queue sheds it at the limit."""
    assert config.queue_limit is not None
    policy = TierAdmission(config)
    for obs in data.draw(
        st.lists(observations(len(config.shares), config.queue_limit), max_size=25)
    ):
        top = AdmissionObservation(0, obs.queue_depth, obs.provider, 1.0, 5.0)
        decision = policy.decide(top)
        assert decision.admit or decision.reason == "queue"
        if obs.queue_depth >= config.queue_limit:
            assert not decision.admit
        if obs.queue_depth < config.queue_limit * (1 - config.hysteresis):
            assert decision.admit


@given(
    config=configs(),
    pressures=st.lists(st.floats(0.0, 1.5), min_size=2, max_size=40),
)
def test_a_shed_tier_comes_back_only_below_its_share_less_the_hysteresis(
    config: AdmissionConfig, pressures: list[float]
) -> None:
    """No flapping: a tier's shedding starts at its share and ends only under share x (1 - h)."""
    assert config.queue_limit is not None
    policy = TierAdmission(config)
    lowest = len(config.shares) - 1
    share = config.shares[lowest]
    shed_before = False
    for pressure in pressures:
        depth = int(pressure * config.queue_limit)
        shed = not policy.decide(AdmissionObservation(lowest, depth)).admit
        fraction = depth / config.queue_limit
        if not shed_before:
            assert shed == (fraction >= share)
        else:
            assert shed == (fraction >= share * (1 - config.hysteresis))
        shed_before = shed


@given(
    limit=st.floats(1_000.0, 1e6),
    calls=st.lists(st.tuples(st.floats(0.0, 20.0), st.floats(0.0, 0.5)), max_size=30),
    look=st.floats(0.0, 100.0),
)
def test_observing_a_provider_never_changes_what_it_grants(
    limit: float, calls: list[tuple[float, float]], look: float
) -> None:
    """budget_used reads the level at a time without refilling: two buckets, one looked at."""
    looked = ProviderBucket(ProviderLimits(input_tokens_per_min=limit, requests_per_min=600))
    plain = ProviderBucket(ProviderLimits(input_tokens_per_min=limit, requests_per_min=600))
    now = 0.0
    for gap, size in calls:
        now += gap
        used = budget_used(looked, now + look)
        assert 0.0 <= used <= 1.0
        a = looked.try_acquire(now, size * limit, 0.0)
        b = plain.try_acquire(now, size * limit, 0.0)
        assert a == b
        for bucket in (looked, plain):
            if a.granted:
                bucket.release()


def test_budget_used_is_the_emptiest_buckets_spent_share() -> None:
    bucket = ProviderBucket(ProviderLimits(input_tokens_per_min=6000, requests_per_min=60))
    assert budget_used(bucket, 0.0) == 0.0
    assert bucket.try_acquire(0.0, 4500, 0).granted
    assert budget_used(bucket, 0.0) == pytest.approx(0.75)  # input: 1500 of 6000 left
    assert budget_used(bucket, 30.0) == pytest.approx(0.25)  # 3000 refilled in 30 s
    assert budget_used(bucket, 1e6) == 0.0


@given(
    per_min=st.floats(100.0, 1e6),
    spends=st.lists(st.tuples(st.floats(0.0, 120.0), st.floats(0.0, 2.0)), max_size=30),
)
def test_a_tenant_is_over_budget_exactly_when_its_spend_outruns_the_refill(
    per_min: float, spends: list[tuple[float, float]]
) -> None:
    """Overdraft = debt over the budget, with level = min(budget, level + refill) - spend."""
    budgets = TenantBudgets({"a": TenantLimits(tokens_per_min=per_min), "free": TenantLimits()})
    level, now = per_min, 0.0
    for gap, share in spends:
        now += gap
        level = min(per_min, level + gap * per_min / 60.0) - share * per_min
        budgets.charge("a", now, share * per_min)
        budgets.charge("free", now, share * per_min)
        assert budgets.overdraft("a", now) == pytest.approx(max(0.0, -level / per_min), abs=1e-9)
        assert budgets.overdraft("free", now) == 0.0  # no budget: never over


def test_a_daily_budget_is_a_day_deep_and_refills_over_the_day() -> None:
    budgets = TenantBudgets({"a": TenantLimits(tokens_per_day=1_440_000)})
    budgets.charge("a", 0.0, 1_440_000 + 144_000)
    assert budgets.overdraft("a", 0.0) == pytest.approx(0.1)
    assert budgets.overdraft("a", 60.0 * 144) == pytest.approx(0.0)  # 1,000/min for 144 min


def test_an_over_budget_tenant_loses_its_lowest_tier_first_and_never_its_top() -> None:
    policy = TierAdmission(AdmissionConfig(shares=(1.0, 0.8, 0.5), tenant_step=0.25))

    def shed(tier: int, overdraft: float) -> bool:
        return not policy.decide(AdmissionObservation(tier, 0, None, 0.0, overdraft)).admit

    assert [shed(t, 0.0) for t in range(3)] == [False, False, False]
    assert [shed(t, 0.1) for t in range(3)] == [False, False, True]
    assert [shed(t, 0.3) for t in range(3)] == [False, True, True]
    assert [shed(t, 9.0) for t in range(3)] == [False, True, True]


@pytest.mark.parametrize(
    ("shares", "message"),
    [((0.9, 0.5), "top tier"), ((1.0, 0.5, 0.7), "never rise"), ((1.0, 0.0), "positive")],
)
def test_inconsistent_shares_are_refused(shares: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdmissionConfig(shares=shares)
