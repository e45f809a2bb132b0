"""A provider's token buckets and the retry rule for throttled calls (sim.policies.llm).

The bucket is compared with its textbook definition: a stream of calls is
admitted in full exactly when, over every run of consecutive calls, the
tokens asked for stay within the burst plus what the bucket refilled
meanwhile (the token-bucket "arrival curve"). Offered beyond the limit, a
greedy client is served the limit per minute.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sim.policies.llm import ProviderBucket, ProviderLimits, RetryRule, TokenBucket


def envelope(times: list[float], sizes: list[float], rate_per_s: float) -> float:
    """The largest excess of a run of consecutive calls over the bucket's refill meanwhile."""
    worst = -math.inf
    for j in range(len(times)):
        total = 0.0
        for i in range(j, -1, -1):
            total += sizes[i]
            worst = max(worst, total - rate_per_s * (times[j] - times[i]))
    return worst


calls = st.lists(st.tuples(st.floats(0.0, 30.0), st.floats(1.0, 5_000.0)), min_size=1, max_size=40)


@given(limit=st.floats(1_000.0, 100_000.0), offered=calls)
def test_a_stream_is_throttled_exactly_when_it_exceeds_the_bucket_envelope(
    limit: float, offered: list[tuple[float, float]]
) -> None:
    """Within the envelope: zero throttles; beyond it: at least one (the bucket starts full)."""
    times = list(itertools.accumulate(gap for gap, _ in offered))
    sizes = [size for _, size in offered]
    excess = envelope(times, sizes, limit / 60.0)
    assume(abs(excess - limit) > 1e-6 * limit)  # no float ties on the boundary
    bucket = ProviderBucket(ProviderLimits(input_tokens_per_min=limit))
    throttled = 0
    for now, size in zip(times, sizes, strict=True):
        answer = bucket.try_acquire(now, size, 0.0)
        if answer.granted:
            bucket.release()
        else:
            throttled += 1
            assert answer.binding == "input_tokens"
            assert answer.wait_s > 0
    assert (throttled == 0) == (excess <= limit)


@settings(max_examples=10)
@given(
    limit=st.floats(10_000.0, 2_000_000.0),
    shares=st.lists(st.floats(1 / 50, 1 / 10), min_size=1, max_size=12),
)
def test_offered_above_the_limit_is_served_at_the_limit_per_minute(
    limit: float, shares: list[float]
) -> None:
    """A client that always has work and waits exactly the bucket's hint gets limit/min (1 %)."""
    bucket = ProviderBucket(ProviderLimits(input_tokens_per_min=limit, requests_per_min=1e9))
    start_s, end_s = 600.0, 150 * 60.0  # the first minutes spend the initial burst
    now, served, index, throttles = 0.0, 0.0, 0, 0
    while now < end_s:
        size = shares[index % len(shares)] * limit
        answer = bucket.try_acquire(now, size, 0.0)
        if answer.granted:
            bucket.release()
            if now >= start_s:
                served += size
            index += 1
        else:
            throttles += 1
            now += answer.wait_s
    per_min = served / ((end_s - start_s) / 60.0)
    assert throttles > 0
    assert per_min == pytest.approx(limit, rel=0.01)


@given(
    limit=st.floats(1_000.0, 100_000.0),
    utilisation=st.floats(0.05, 0.99),
    size_share=st.floats(0.001, 0.5),
)
def test_evenly_offered_below_the_limit_is_never_throttled(
    limit: float, utilisation: float, size_share: float
) -> None:
    size = size_share * limit
    gap = size / (utilisation * limit / 60.0)
    bucket = ProviderBucket(ProviderLimits(input_tokens_per_min=limit, requests_per_min=1e9))
    for k in range(500):
        answer = bucket.try_acquire(k * gap, size, 0.0)
        assert answer.granted, k
        bucket.release()


def test_every_dimension_must_have_room_at_once_and_refusals_are_not_charged() -> None:
    bucket = ProviderBucket(
        ProviderLimits(requests_per_min=60, input_tokens_per_min=6_000, output_tokens_per_min=600)
    )
    assert bucket.try_acquire(0.0, 100.0, 600.0).granted  # spends the whole output minute
    refused = bucket.try_acquire(0.0, 100.0, 60.0)
    assert not refused.granted and refused.binding == "output_tokens"
    assert refused.wait_s == pytest.approx(6.0)  # 60 tokens at 10 tokens/s
    assert bucket.buckets["input_tokens"].level == pytest.approx(5_900.0)  # refusal not charged
    assert bucket.try_acquire(6.0, 100.0, 60.0).granted


def test_the_concurrency_cap_refuses_until_a_call_ends() -> None:
    bucket = ProviderBucket(ProviderLimits(concurrency=2))
    assert bucket.try_acquire(0.0, 1.0, 1.0).granted
    assert bucket.try_acquire(0.0, 1.0, 1.0).granted
    refused = bucket.try_acquire(0.0, 1.0, 1.0)
    assert (refused.granted, refused.binding, refused.wait_s) == (False, "concurrency", 0.0)
    bucket.release()
    assert bucket.try_acquire(0.0, 1.0, 1.0).granted
    with pytest.raises(ValueError):
        ProviderBucket(ProviderLimits()).release()


def test_a_call_larger_than_a_minute_can_never_fit_and_is_not_retried() -> None:
    bucket = ProviderBucket(ProviderLimits(input_tokens_per_min=1_000))
    refused = bucket.try_acquire(0.0, 1_001.0, 0.0)
    assert not refused.granted and math.isinf(refused.wait_s)
    assert not RetryRule().next(1, 0.0, refused.wait_s, 0.5).retry


def test_a_bucket_refills_continuously_up_to_its_burst() -> None:
    bucket = TokenBucket(per_min=600.0)  # 10 a second
    bucket.level = 0.0
    bucket.refill(3.0)
    assert bucket.level == pytest.approx(30.0)
    bucket.refill(1_000.0)
    assert bucket.level == 600.0
    bucket.refill(10.0)  # time never runs backwards
    assert bucket.level == 600.0


@given(
    hints=st.lists(st.floats(0.0, 30.0), min_size=1, max_size=30),
    draws=st.lists(st.floats(0.0, 0.999), min_size=30, max_size=30),
    use_hint=st.booleans(),
    max_retries=st.integers(0, 10),
    max_wait=st.floats(0.0, 120.0),
)
def test_the_retry_rule_keeps_to_its_budget_and_jitter_range(
    hints: list[float], draws: list[float], use_hint: bool, max_retries: int, max_wait: float
) -> None:
    rule = RetryRule(
        base_s=0.5,
        factor=2.0,
        max_s=20.0,
        max_retries=max_retries,
        max_wait_s=max_wait,
        use_retry_after=use_hint,
    )
    waited, retries = 0.0, 0
    for n, (hint, u) in enumerate(zip(hints, draws, strict=False), start=1):
        decision = rule.next(n, waited, hint, u)
        if not decision.retry:
            break
        if use_hint and hint > 0:
            assert decision.delay_s == hint
        else:
            assert 0.0 <= decision.delay_s <= rule.backoff_cap(n) <= 20.0
            assert decision.delay_s == pytest.approx(u * min(20.0, 0.5 * 2.0 ** (n - 1)))
        waited += decision.delay_s
        retries += 1
    assert retries <= max_retries
    assert waited <= max_wait


def test_full_jitter_caps_grow_exponentially_to_the_maximum() -> None:
    rule = RetryRule(base_s=1.0, factor=2.0, max_s=10.0)
    assert [rule.backoff_cap(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
