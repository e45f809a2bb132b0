"""Kubernetes' HPA, in ``sim.policies.autoscale.hpa`` and ``behavior``.

Checked on the worked examples of the Kubernetes documentation and on its
behaviour: tolerance, stabilisation window, rate limits.
"""

from __future__ import annotations

import math

from autoscale_support import PROPS, obs
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.autoscale import HpaConfig, HpaPolicy, ScalingPolicy, ScalingRules


def hpa(**config: object) -> HpaPolicy:
    base: dict[str, object] = {"min_agents": 1, "max_agents": 250}
    return HpaPolicy(HpaConfig(**{**base, **config}))  # type: ignore[arg-type]


def test_hpa_doubles_at_twice_the_target() -> None:
    """Kubernetes docs: "if the current metric value is 200m, and the desired value is 100m,
    the number of replicas will be doubled, since 200.0 / 100.0 == 2.0"."""
    decision = hpa(target_cpu_utilization=0.5).decide(obs(1, cpu=1.0), 0.0)
    assert (decision.delta, decision.target, decision.policy) == (1, 2, "hpa")


def test_hpa_halves_at_half_the_target_once_the_window_has_passed() -> None:
    """Kubernetes docs: "If the current value is instead 50m, you'll halve the number of
    replicas"; a new HPA first waits out its 300 s scale-down window."""
    policy = hpa(target_cpu_utilization=0.7)
    held = policy.decide(obs(10, cpu=0.35), 0.0)
    assert held.delta == 0 and "stabilised 5 -> 10" in held.reason
    assert policy.decide(obs(10, cpu=0.35), 300.0).target == 5


def test_hpa_walkthrough_305_percent_of_50_reaches_7_in_two_periods() -> None:
    """The php-apache walkthrough: 1 replica at 305 % of a 50 % target -> ceil(6.1) = 7,
    reached through the default +4 pods per 15 s scale-up policy."""
    policy = hpa(target_cpu_utilization=0.5)
    first = policy.decide(obs(1, cpu=3.05), 0.0)
    assert first.target == 5 and "limited to 5" in first.reason
    # Four agents still starting count as idle: 3.05 x 1 / (0.5 x 5) = 1.22 -> ceil(6.1) = 7.
    early = policy.decide(obs(5, ready=1, cpu=3.05), 10.0)
    assert early.delta == 0  # the period that added 4 has not passed
    assert policy.decide(obs(5, ready=1, cpu=3.05), 15.0).target == 7


def test_hpa_tolerance() -> None:
    assert hpa().decide(obs(10, cpu=0.75), 0.0).delta == 0  # 0.75 / 0.7 = 1.07
    assert hpa().decide(obs(10, cpu=0.78), 0.0).target == 12  # 1.114 x 10 -> 12
    assert hpa(tolerance=0.0).decide(obs(10, cpu=0.75), 0.0).target == 11


def test_hpa_starting_agents_count_as_idle_on_a_scale_up() -> None:
    # 5 ready at 0.8 of 0.7 asks for more, but with 5 starting at 0 %: 0.8 x 5 / 7 < 1.
    decision = hpa().decide(obs(10, ready=5, cpu=0.8), 0.0)
    assert decision.delta == 0


def test_hpa_stabilisation_holds_a_scale_down_until_the_window_max_drops() -> None:
    policy = hpa()
    for t in (0.0, 15.0, 30.0, 45.0):
        assert policy.decide(obs(10, cpu=0.7), t).delta == 0  # recommendation 10
    t = 60.0
    while t < 345.0:
        assert policy.decide(obs(10, cpu=0.35), t).delta == 0, t  # 5, but 10 in the window
        t += 15.0
    assert policy.decide(obs(10, cpu=0.35), 345.0).target == 5  # the last 10 (t=45) left


def test_hpa_stabilisation_follows_the_window_max_down_step_by_step() -> None:
    policy = hpa(tolerance=0.0)
    policy.decide(obs(20, cpu=0.7), 0.0)  # recommendation 20
    policy.decide(obs(20, cpu=0.525), 100.0)  # 15
    policy.decide(obs(20, cpu=0.35), 200.0)  # 10
    assert policy.decide(obs(20, cpu=0.35), 301.0).target == 15
    assert policy.decide(obs(15, cpu=0.35 * 20 / 15), 401.0).target == 10


def test_hpa_rate_limits_cap_growth_at_double_or_plus_4_per_15_s() -> None:
    policy = hpa(target_cpu_utilization=0.1)
    agents, targets = 1, []
    for step in range(10):
        decision = policy.decide(obs(agents, cpu=1.0), step * 15.0)
        targets.append(decision.target)
        agents = decision.target
    assert targets == [5, 10, 20, 40, 80, 160, 250, 250, 250, 250]


@PROPS
@given(
    start=st.integers(1, 120),
    cpu=st.floats(0.8, 5.0),
    dts=st.lists(st.sampled_from([1.0, 5.0, 15.0, 30.0]), min_size=1, max_size=30),
)
def test_hpa_never_grows_faster_than_its_policies(start: int, cpu: float, dts: list[float]) -> None:
    policy = hpa(target_cpu_utilization=0.5)
    now, agents = 0.0, start
    history: list[tuple[float, int]] = [(0.0, start)]
    for dt in dts:
        now += dt
        decision = policy.decide(obs(agents, cpu=cpu), now)
        # the size at the start of the 15 s period (the last size before now - 15, or the start)
        before = [n for t, n in history if t <= now - 15.0]
        base = before[-1] if before else start
        assert decision.target <= max(2 * base, base + 4, agents)
        agents = decision.target
        history.append((now, agents))


def test_hpa_scale_down_policies_limit_shrinking() -> None:
    slow = ScalingRules(0.0, (ScalingPolicy("pods", 2, 60.0),))
    policy = hpa(scale_down=slow, tolerance=0.0)
    assert policy.decide(obs(10, cpu=0.07), 0.0).target == 8
    assert policy.decide(obs(8, cpu=0.07), 30.0).delta == 0
    assert policy.decide(obs(8, cpu=0.07), 60.0).target == 6


def test_hpa_queue_average_value_metric() -> None:
    policy = hpa(target_cpu_utilization=None, target_queue_per_agent=2.0)
    assert policy.decide(obs(100, queue=300.0), 0.0).target == 150
    inflight = hpa(
        target_cpu_utilization=None, target_queue_per_agent=2.0, queue_includes_in_flight=True
    )
    assert inflight.decide(obs(100, queue=300.0, in_flight=100.0), 0.0).target == 200


def test_hpa_takes_the_largest_metric_and_skips_scale_down_when_one_is_missing() -> None:
    both = hpa(target_queue_per_agent=1.0)
    assert both.decide(obs(10, cpu=0.7, queue=18.0), 0.0).target == 18
    missing = hpa(target_queue_per_agent=1.0, scale_down=ScalingRules(0.0))
    held = missing.decide(obs(10, cpu=math.nan, queue=2.0), 0.0)
    assert held.delta == 0 and "missing" in held.reason
    assert hpa().decide(obs(10, cpu=math.nan), 0.0).reason == "no metric available"


def test_hpa_force_passes_the_rate_limit() -> None:
    policy = hpa(target_cpu_utilization=0.1)
    assert policy.decide(obs(1, cpu=1.0), 0.0).target == 5
    policy.force_scale_up(1.0, "queue_overflow")
    forced = policy.decide(obs(5, ready=1, cpu=1.0), 2.0)
    assert forced.target == 10 and "queue_overflow" in forced.reason
