"""A new leader's autoscaler takes over its predecessor's memory from the changes it made.

The spec's chiefs replicate the autoscaler's decisions with Raft, so a new
leader keeps their cooldowns; the live coordinator reads them back from the
event log (``restore``). The step policy keeps nothing else, so a successor
restored from the changes decides exactly as the predecessor would have.
"""

from __future__ import annotations

from autoscale_support import PROPS, SPEC, obs
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.autoscale import FleetObservation, HpaConfig, HpaPolicy, StepPolicy
from sim.policies.autoscale.base import ScaleRecord
from sim.policies.autoscale.behavior import ScalingPolicy, ScalingRules
from sim.world.policy_set import step_config

loads = st.lists(
    st.tuples(
        st.floats(1.0, 400.0),  # seconds to the next evaluation
        st.sampled_from([obs(queue=150), obs(queue=5, idle=0.5), obs(queue=50)]),
    ),
    min_size=2,
    max_size=30,
)


@PROPS
@given(steps=loads, cut=st.integers(0, 29))
def test_a_restored_step_policy_decides_as_its_predecessor_would(
    steps: list[tuple[float, FleetObservation]], cut: int
) -> None:
    predecessor = StepPolicy(step_config(SPEC))
    history: list[ScaleRecord] = []
    now = 0.0
    cut = min(cut, len(steps) - 1)
    for dt, o in steps[:cut]:
        now += dt
        decision = predecessor.decide(o, now)
        if decision.delta:
            history.append(ScaleRecord(now, o.agents, decision.target))
    successor = StepPolicy(step_config(SPEC))
    successor.restore(history)
    for dt, o in steps[cut:]:
        now += dt
        assert successor.decide(o, now) == predecessor.decide(o, now)


def test_a_step_policy_that_forgot_would_scale_down_inside_the_cooldown() -> None:
    """The live finding: a new primary 4 minutes after a scale-down drained again."""
    quiet = obs(queue=5, idle=0.5)
    history = [ScaleRecord(60.0, 173, 168)]
    restored, forgetful = StepPolicy(step_config(SPEC)), StepPolicy(step_config(SPEC))
    restored.restore(history)
    assert forgetful.decide(quiet, 300.0).delta == -5
    held = restored.decide(quiet, 300.0)
    assert held.delta == 0 and "cooldown" in held.reason
    assert restored.decide(quiet, 60.0 + SPEC.auto_scale.scale_down.cooldown_seconds).delta == -5


def test_hpa_rate_limits_count_the_predecessors_changes() -> None:
    """A scale-down policy of 1 pod per 60 s: the predecessor's change at 100 s holds a
    successor's at 130 s, as it would have held the predecessor's own."""
    one_a_minute = ScalingRules(policies=(ScalingPolicy("pods", 1, 60.0),))
    config = HpaConfig(min_agents=50, max_agents=250, scale_down=one_a_minute)
    quiet = obs(agents=200, queue=0, cpu=0.05, idle=0.9)
    restored, forgetful = HpaPolicy(config), HpaPolicy(config)
    restored.restore([ScaleRecord(100.0, 201, 200)])
    assert forgetful.decide(quiet, 130.0).delta == -1
    assert restored.decide(quiet, 130.0).delta == 0
    assert restored.decide(quiet, 161.0).delta == -1  # the period has passed
