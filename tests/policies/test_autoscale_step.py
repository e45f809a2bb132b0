"""The spec's step policy (section 4.1), in ``sim.policies.autoscale.step``.

Checked against the spec's own numbers, then by properties over random
observation sequences: bounds, cooldowns (a force lifts the up-cooldown
exactly once), no flapping under a constant load, and a step load driven
through a tiny shell that spawns agents after a delay.
"""

from __future__ import annotations

import math

import pytest
from autoscale_support import PROPS, SPEC, obs
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.autoscale import Autoscaler, FleetObservation, ScaleDecision, StepPolicy
from sim.scenario.schema import Scaling
from sim.world.policy_set import step_config


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
