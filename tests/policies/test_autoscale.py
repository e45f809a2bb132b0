"""What every autoscaler in ``sim.policies.autoscale`` promises, and the vertical sizes.

One property holds all three policies to the common contract: every target
within bounds and ``target == agents + delta``; the factory refuses unknown
kinds and settings, the configs refuse nonsense. Each policy's own rules are
tested in ``test_autoscale_step.py``, ``test_autoscale_hpa.py`` and
``test_autoscale_keda.py``.
"""

from __future__ import annotations

import itertools
import math

import pytest
from autoscale_support import PROPS, SPEC
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.autoscale import (
    AUTOSCALERS,
    FleetObservation,
    HpaConfig,
    KedaConfig,
    KedaQueuePolicy,
    StepConfig,
    size_options,
)
from sim.world.policy_set import make_autoscaler
from sim.world.topology import amdahl_speed

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
