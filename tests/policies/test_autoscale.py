"""Tests for the autoscalers in ``sim.policies.autoscale``.

The step policy is checked against the spec's own numbers (section 4.1), then
by properties over random observation sequences: bounds, cooldowns (a force
lifts the up-cooldown exactly once), no flapping under a constant load, and a
step load driven through a tiny shell that spawns agents after a delay. The
HPA is checked on the worked examples of the Kubernetes documentation and on
its behaviour (tolerance, stabilisation window, rate limits); the KEDA policy
on its formula, polling, cooldown and bounds. One property holds all three to
the common contract: every target within bounds and ``target == agents + delta``.
"""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.policies.autoscale import (
    AUTOSCALERS,
    Autoscaler,
    FleetObservation,
    HpaConfig,
    HpaPolicy,
    KedaConfig,
    KedaQueuePolicy,
    ScaleDecision,
    ScalingPolicy,
    ScalingRules,
    StepConfig,
    StepPolicy,
    size_options,
)
from sim.scenario.schema import Scaling
from sim.world.policy_set import make_autoscaler, step_config
from sim.world.topology import amdahl_speed

PROPS = settings(max_examples=40, deadline=None)
SPEC = Scaling()


def obs(
    agents: int = 200,
    *,
    ready: int | None = None,
    queue: float = 50.0,
    rt: float = 1.0,
    cpu: float = 0.5,
    idle: float = 0.1,
    in_flight: float = 0.0,
) -> FleetObservation:
    ready = agents if ready is None else ready
    return FleetObservation(
        agents=agents,
        ready=ready,
        starting=agents - ready,
        queue_depth=queue,
        avg_response_time_s=rt,
        cpu_utilization=cpu,
        idle_fraction=idle,
        in_flight=in_flight,
    )


def spec_step() -> StepPolicy:
    return StepPolicy(step_config(SPEC))


# ----------------------------------------------------------------------- step: the spec's numbers


def test_from_spec_reads_the_block_in_canonical_units() -> None:
    cfg = spec_step().config
    assert (cfg.min_agents, cfg.max_agents) == (50, 250)
    assert cfg.metrics == ("queue_depth", "avg_response_time", "cpu_utilization")
    assert (cfg.up_queue_depth, cfg.up_response_time_s, cfg.up_cpu_utilization) == (100, 5.0, None)
    assert (cfg.increment, cfg.up_cooldown_s) == (10, 300.0)
    assert (cfg.down_queue_depth, cfg.down_idle_fraction) == (10, 0.3)
    assert (cfg.decrement, cfg.down_cooldown_s) == (5, 600.0)


def test_queue_of_100_scales_up_by_10() -> None:
    decision = spec_step().decide(obs(queue=100), 0.0)
    assert (decision.delta, decision.target, decision.policy) == (10, 210, "step")
    assert "queue_depth 100 >= 100" in decision.reason


def test_response_time_of_5_s_scales_up_by_10() -> None:
    decision = spec_step().decide(obs(queue=0, rt=5.0), 0.0)
    assert (decision.delta, decision.target) == (10, 210)
    assert "avg_response_time 5 >= 5" in decision.reason


def test_short_queue_and_30_percent_idle_scale_down_by_5() -> None:
    decision = spec_step().decide(obs(queue=10, idle=0.3), 0.0)
    assert (decision.delta, decision.target) == (-5, 195)


def test_just_inside_the_thresholds_nothing_happens() -> None:
    policy = spec_step()
    assert policy.decide(obs(queue=99, rt=4.99), 0.0).delta == 0
    assert policy.decide(obs(queue=11, idle=0.9), 1.0).delta == 0
    assert policy.decide(obs(queue=10, idle=0.29), 2.0).delta == 0


def test_scale_ups_wait_300_s_for_each_other() -> None:
    policy = spec_step()
    assert policy.decide(obs(200, queue=500), 0.0).delta == 10
    held = policy.decide(obs(210, queue=500), 299.0)
    assert held.delta == 0 and "cooldown" in held.reason
    assert policy.decide(obs(210, queue=500), 300.0).delta == 10


def test_scale_downs_wait_600_s_for_each_other() -> None:
    policy = spec_step()
    assert policy.decide(obs(200, queue=0, idle=0.5), 0.0).delta == -5
    assert policy.decide(obs(195, queue=0, idle=0.5), 599.0).delta == 0
    assert policy.decide(obs(195, queue=0, idle=0.5), 600.0).delta == -5


def test_a_scale_up_restarts_the_scale_down_cooldown() -> None:
    policy = spec_step()
    assert policy.decide(obs(200, queue=0, idle=0.5), 0.0).delta == -5
    assert policy.decide(obs(195, queue=300), 500.0).delta == 10
    # 700 s after the scale-down but only 200 s after the scale-up: held.
    assert policy.decide(obs(205, queue=0, idle=0.5), 700.0).delta == 0
    assert policy.decide(obs(205, queue=0, idle=0.5), 1100.0).delta == -5


def test_without_the_reset_scale_downs_time_from_scale_downs_only() -> None:
    policy = StepPolicy(step_config(SPEC, up_resets_down_cooldown=False))
    assert policy.decide(obs(200, queue=0, idle=0.5), 0.0).delta == -5
    assert policy.decide(obs(195, queue=300), 500.0).delta == 10
    assert policy.decide(obs(205, queue=0, idle=0.5), 700.0).delta == -5


def test_a_scale_down_does_not_delay_a_scale_up() -> None:
    policy = spec_step()
    assert policy.decide(obs(200, queue=0, idle=0.5), 0.0).delta == -5
    assert policy.decide(obs(195, queue=300), 1.0).delta == 10


def test_steps_are_cut_at_the_bounds_and_held_there() -> None:
    policy = spec_step()
    assert policy.decide(obs(245, queue=300), 0.0).target == 250
    at_max = policy.decide(obs(250, queue=300), 1000.0)
    assert at_max.delta == 0 and "at max" in at_max.reason
    policy = spec_step()
    assert policy.decide(obs(52, queue=0, idle=0.9), 0.0).target == 50
    at_min = policy.decide(obs(50, queue=0, idle=0.9), 1000.0)
    assert at_min.delta == 0 and "at min" in at_min.reason


def test_a_hold_at_max_starts_no_cooldown() -> None:
    policy = spec_step()
    assert policy.decide(obs(250, queue=300), 0.0).delta == 0
    assert policy.decide(obs(240, queue=300), 1.0).delta == 10


def test_outside_the_bounds_the_fleet_is_corrected_without_a_cooldown() -> None:
    policy = spec_step()
    low = policy.decide(obs(40, queue=0), 0.0)
    assert (low.delta, low.target) == (10, 50) and "below min_agents" in low.reason
    assert policy.decide(obs(50, queue=300), 1.0).delta == 10
    high = policy.decide(obs(300, queue=300), 2.0)
    assert (high.delta, high.target) == (-50, 250)


def test_cpu_counts_only_with_a_threshold_and_only_listed_metrics_count() -> None:
    assert spec_step().decide(obs(queue=0, cpu=0.99), 0.0).delta == 0
    with_cpu = StepPolicy(step_config(SPEC, up_cpu_utilization=0.8))
    decision = with_cpu.decide(obs(queue=0, cpu=0.85), 0.0)
    assert decision.delta == 10 and "cpu_utilization" in decision.reason
    queue_only = StepPolicy(step_config(SPEC, metrics=("queue_depth",)))
    assert queue_only.decide(obs(queue=0, rt=60.0), 0.0).delta == 0


def test_missing_metrics_trigger_nothing() -> None:
    policy = spec_step()
    assert policy.decide(obs(queue=0, rt=math.nan), 0.0).delta == 0
    assert policy.decide(obs(queue=0, idle=math.nan), 1.0).delta == 0


def test_disabled_changes_nothing() -> None:
    scaling = Scaling.model_validate({"auto_scale": {"enabled": False}})
    decision = StepPolicy(step_config(scaling)).decide(obs(40, queue=900), 0.0)
    assert decision.delta == 0 and decision.reason == "autoscaling disabled"


def test_a_force_lifts_the_up_cooldown_once() -> None:
    policy = spec_step()
    assert policy.decide(obs(200, queue=300), 0.0).delta == 10
    policy.force_scale_up(10.0, "queue_overflow")
    forced = policy.decide(obs(210, queue=0), 15.0)
    assert forced.delta == 10 and "queue_overflow" in forced.reason
    assert policy.decide(obs(220, queue=900), 30.0).delta == 0  # the force is spent
    assert policy.decide(obs(220, queue=900), 315.0).delta == 10


# ----------------------------------------------------------------------- step: properties


@PROPS
@given(
    start=st.integers(50, 250),
    events=st.lists(
        st.tuples(
            # gaps near the cooldowns (300 s, 600 s) as well as anywhere
            st.one_of(st.sampled_from([0.0, 15.0, 299.0, 300.0, 550.0, 599.0]), st.floats(0, 700)),
            st.sampled_from([0.0, 5.0, 10.0, 50.0, 100.0, 600.0]),
            st.sampled_from([0.5, 4.9, 5.0, 12.0, math.nan]),
            st.sampled_from([0.0, 0.2, 0.3, 0.8, math.nan]),
            st.one_of(st.none(), st.integers(50, 250)),
            st.integers(0, 9).map(lambda n: n == 0),  # a force about one time in ten
        ),
        max_size=60,
    ),
)
def test_step_policy_keeps_bounds_and_cooldowns(
    start: int, events: list[tuple[float, float, float, float, int | None, bool]]
) -> None:
    policy = spec_step()
    cfg = policy.config
    now, agents = 0.0, start
    last_up: float | None = None
    last_event: float | None = None
    force_pending = False
    for dt, queue, rt, idle, override, force in events:
        now += dt
        agents = agents if override is None else override
        if force:
            policy.force_scale_up(now, "queue_overflow")
            force_pending = True
        decision = policy.decide(obs(agents, queue=queue, rt=rt, idle=idle), now)
        assert cfg.min_agents <= decision.target <= cfg.max_agents
        assert decision.target == agents + decision.delta
        if decision.delta > 0:
            if not force_pending:
                assert last_up is None or now - last_up >= cfg.up_cooldown_s
            last_up = last_event = now
        elif decision.delta < 0:
            assert last_event is None or now - last_event >= cfg.down_cooldown_s
            last_event = now
        force_pending = False  # consumed by this decide, whatever it did
        agents = decision.target


@PROPS
@given(
    start=st.integers(50, 250),
    queue=st.floats(0.0, 2000.0),
    rt=st.floats(0.0, 20.0),
    idle=st.floats(0.0, 1.0),
    interval=st.sampled_from([15.0, 60.0, 300.0]),
)
def test_a_constant_load_moves_the_fleet_one_way_only(
    start: int, queue: float, rt: float, idle: float, interval: float
) -> None:
    policy = spec_step()
    agents, signs = start, []
    for step in range(400):
        decision = policy.decide(obs(agents, queue=queue, rt=rt, idle=idle), step * interval)
        if decision.delta:
            signs.append(decision.delta > 0)
        agents = decision.target
    assert len(set(signs)) <= 1


class SpawningShell:
    """A fleet shell in miniature: asked-for agents become ready after a spawn delay."""

    def __init__(self, policy: Autoscaler, agents: int, spawn_delay_s: float) -> None:
        self.policy = policy
        self.ready = agents
        self.spawning: list[float] = []  # ready-at times
        self.spawn_delay_s = spawn_delay_s
        self.decisions: list[tuple[float, ScaleDecision]] = []

    def evaluate(self, now: float, queue: float) -> ScaleDecision:
        self.ready += sum(1 for at in self.spawning if at <= now)
        self.spawning = [at for at in self.spawning if at > now]
        agents = self.ready + len(self.spawning)
        observation = FleetObservation(
            agents=agents,
            ready=self.ready,
            starting=len(self.spawning),
            queue_depth=queue,
            avg_response_time_s=8.0 if queue else 1.0,
            cpu_utilization=1.0 if queue else 0.2,
            idle_fraction=0.0 if queue else 0.8,
            in_flight=float(self.ready),
        )
        decision = self.policy.decide(observation, now)
        if decision.delta > 0:
            self.spawning += [now + self.spawn_delay_s] * decision.delta
        elif decision.delta < 0:
            self.ready += decision.delta  # drained agents leave the count at once
        self.decisions.append((now, decision))
        return decision


@pytest.mark.parametrize("start", [50, 173, 200])
@pytest.mark.parametrize("spawn_delay_s", [0.0, 90.0, 450.0])
def test_a_step_load_reaches_max_within_the_predicted_steps(
    start: int, spawn_delay_s: float
) -> None:
    """Queue 0 -> 1,000 at t = 0: ceil((max - start) / increment) scale-ups, one per cooldown."""
    policy = spec_step()
    cfg = policy.config
    shell = SpawningShell(policy, start, spawn_delay_s)
    steps = math.ceil((cfg.max_agents - start) / cfg.increment)
    interval = 15.0
    horizon = steps * (cfg.up_cooldown_s + spawn_delay_s)
    now = 0.0
    while now <= horizon + interval:
        shell.evaluate(now, 1000.0)
        now += interval
    ups = [t for t, d in shell.decisions if d.delta > 0]
    assert len(ups) == steps
    assert all(d.delta >= 0 for _, d in shell.decisions)
    assert ups == [k * cfg.up_cooldown_s for k in range(steps)]  # 300 is a multiple of 15
    assert shell.ready == cfg.max_agents and not shell.spawning
    assert ups[-1] + spawn_delay_s <= horizon if steps else True


# --------------------------------------------------------------------------- HPA


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


# --------------------------------------------------------------------------- KEDA


def keda(**config: object) -> KedaQueuePolicy:
    base: dict[str, object] = {"min_agents": 1, "max_agents": 100, "target_per_agent": 5.0}
    return KedaQueuePolicy(KedaConfig(**{**base, **config}))  # type: ignore[arg-type]


def test_keda_asks_for_ceil_queue_over_target() -> None:
    decision = keda(include_in_flight=False).decide(obs(10, queue=123.0), 0.0)
    assert (decision.target, decision.policy) == (25, "keda")
    with_held = keda().decide(obs(10, queue=123.0, in_flight=10.0), 0.0)
    assert with_held.target == 27  # ceil(133 / 5)


def test_keda_acts_only_at_its_polling_interval() -> None:
    policy = keda()
    assert policy.decide(obs(10, queue=100.0), 0.0).target == 20
    skipped = policy.decide(obs(20, queue=300.0), 29.0)
    assert skipped.delta == 0 and "not polled" in skipped.reason
    assert policy.decide(obs(20, queue=300.0), 30.0).target == 60


def test_keda_waits_its_cooldown_after_the_last_active_poll_before_going_to_min() -> None:
    policy = keda(min_agents=2)
    assert policy.decide(obs(10, queue=200.0), 0.0).target == 40
    for t in range(30, 300, 30):
        held = policy.decide(obs(40, queue=0.0), float(t))
        assert held.delta == 0 and "cooldown until 300" in held.reason
    assert policy.decide(obs(40, queue=0.0), 300.0).target == 2


def test_keda_scales_in_while_active_only_to_the_window_max() -> None:
    policy = keda(stabilization_window_s=120.0)
    assert policy.decide(obs(10, queue=200.0), 0.0).target == 40
    assert policy.decide(obs(40, queue=50.0), 30.0).delta == 0  # 10 wanted, 40 in the window
    assert policy.decide(obs(40, queue=50.0), 120.0).target == 10


def test_keda_tolerance_and_bounds() -> None:
    assert keda().decide(obs(20, queue=104.0), 0.0).delta == 0  # 1.04 of target
    assert keda().decide(obs(20, queue=10_000.0), 0.0).target == 100
    from_zero = keda(min_agents=0).decide(obs(0, queue=1.0), 0.0)
    assert from_zero.target == 1 and "activated" in from_zero.reason
    idle_zero = keda(min_agents=0).decide(obs(0, queue=0.0), 0.0)
    assert idle_zero.delta == 0


def test_keda_activation_threshold() -> None:
    policy = keda(min_agents=0, activation_threshold=3.0)
    assert policy.decide(obs(0, queue=3.0), 0.0).delta == 0
    assert policy.decide(obs(0, queue=4.0), 30.0).target == 1


def test_keda_force_polls_at_once() -> None:
    policy = keda()
    policy.decide(obs(10, queue=50.0), 0.0)
    policy.force_scale_up(5.0, "queue_overflow")
    forced = policy.decide(obs(10, queue=500.0), 6.0)
    assert forced.target == 100 and "queue_overflow" in forced.reason


# --------------------------------------------------------------------------- all three

observation = st.builds(
    lambda agents, ready_share, queue, rt, cpu, idle, inflight: FleetObservation(
        agents=agents,
        ready=round(agents * ready_share),
        starting=agents - round(agents * ready_share),
        queue_depth=queue,
        avg_response_time_s=rt,
        cpu_utilization=cpu,
        idle_fraction=idle,
        in_flight=inflight,
    ),
    st.integers(0, 320),
    st.sampled_from([0.0, 0.5, 1.0]),
    st.one_of(st.floats(0.0, 5000.0), st.just(math.nan)),
    st.one_of(st.floats(0.0, 30.0), st.just(math.nan)),
    st.one_of(st.floats(0.0, 1.0), st.just(math.nan)),
    st.floats(0.0, 1.0),
    st.floats(0.0, 300.0),
)


@PROPS
@given(
    kind=st.sampled_from(AUTOSCALERS),
    steps=st.lists(
        st.tuples(st.floats(0.0, 200.0), observation, st.integers(0, 9)), min_size=1, max_size=40
    ),
)
def test_every_autoscaler_keeps_to_the_contract(
    kind: str, steps: list[tuple[float, FleetObservation, int]]
) -> None:
    policy = make_autoscaler(kind, SPEC)
    now = 0.0
    for dt, o, roll in steps:
        now += dt
        if roll == 0:
            policy.force_scale_up(now, "queue_overflow")
        decision = policy.decide(o, now)
        assert SPEC.min_agents <= decision.target <= SPEC.max_agents
        assert decision.target == o.agents + decision.delta
        assert decision.policy == kind and decision.reason


def test_make_autoscaler_reports_unknown_kinds_and_settings() -> None:
    with pytest.raises(ValueError, match="expected one of step, hpa, keda"):
        make_autoscaler("predictive", SPEC)
    with pytest.raises(ValueError, match="unknown hpa autoscaler setting 'cooldown'"):
        make_autoscaler("hpa", SPEC, cooldown=10)
    keda_policy = make_autoscaler("keda", SPEC, target_per_agent=2.0)
    assert isinstance(keda_policy, KedaQueuePolicy)
    assert keda_policy.config.min_agents == 50 and keda_policy.config.target_per_agent == 2.0


def test_configs_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="min_agents"):
        StepConfig(min_agents=10, max_agents=5)
    with pytest.raises(ValueError, match="unknown metric"):
        StepConfig(metrics=("latency",))
    with pytest.raises(ValueError, match="at least one"):
        HpaConfig(target_cpu_utilization=None)
    with pytest.raises(ValueError, match="target_per_agent"):
        KedaConfig(target_per_agent=0.0)


# --------------------------------------------------------------------------- vertical sizes


def test_size_options_for_the_spec_specialist() -> None:
    options = size_options((1, 2), (2, 4), 0.9, price_vcpu_h=0.04, price_gb_h=0.005)
    assert [(o.vcpu, o.mem_gb) for o in options] == [(1.0, 2.0), (2.0, 4.0)]
    assert options[0].speed == 1.0
    assert options[1].speed == pytest.approx(1 / (0.1 + 0.45))
    assert options[1].usd_per_hour == pytest.approx(2 * 0.04 + 4 * 0.005)
    assert options[1].usd_per_work_hour == pytest.approx(options[1].usd_per_hour / options[1].speed)


def test_size_options_end_at_an_off_grid_max() -> None:
    options = size_options((4, 8), (10, 16), 0.5, 0.04, 0.005)
    assert [(o.vcpu, o.mem_gb) for o in options] == [(4, 8), (8, 16), (10, 16)]


@PROPS
@given(
    base=st.tuples(st.floats(0.25, 8.0), st.floats(0.5, 16.0)),
    scale=st.tuples(st.floats(1.0, 6.0), st.floats(1.0, 6.0)),
    parallel=st.floats(0.0, 1.0),
)
def test_size_options_agree_with_the_world_model(
    base: tuple[float, float], scale: tuple[float, float], parallel: float
) -> None:
    top = (base[0] * scale[0], base[1] * scale[1])
    options = size_options(base, top, parallel, 0.04048, 0.004445)
    assert (options[0].vcpu, options[0].mem_gb) == base
    assert (options[-1].vcpu, options[-1].mem_gb) == top
    for a, b in itertools.pairwise(options):
        assert a.vcpu <= b.vcpu and a.mem_gb <= b.mem_gb and a.speed <= b.speed + 1e-12
    for o in options:
        assert o.speed == pytest.approx(amdahl_speed(o.vcpu, base[0], parallel))


def test_size_options_reject_a_max_below_base() -> None:
    with pytest.raises(ValueError, match="base <= max"):
        size_options((2, 4), (1, 8), 0.9, 0.04, 0.005)
