"""The escalation policy: team retries with backoff, then the zone's moves, then the chief."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.escalation import (
    Action,
    EscalationConfig,
    EscalationPolicy,
    Feasible,
    History,
    ZoneMove,
)

ALL = Feasible()


def run_out(policy: EscalationPolicy, feasible: Feasible = ALL) -> list[tuple[Action, object]]:
    """Fail a task over and over until the policy gives up; the steps it took."""
    history = History()
    steps: list[tuple[Action, object]] = []
    for attempt in range(100):
        decision = policy.on_failure(history, f"agent-{attempt}", "A", "error", feasible)
        steps.append((decision.action, decision.move or decision.delay_s))
        history = decision.history
        if decision.action is Action.FAIL:
            return steps
    raise AssertionError("the policy never gave up")


def test_the_spec_order_team_then_zone_then_chief_then_fail() -> None:
    policy = EscalationPolicy(EscalationConfig(team_retries=2, backoff_s=1.0, chief_retries=1))
    assert run_out(policy) == [
        (Action.RETRY, 1.0),
        (Action.RETRY, 2.0),
        (Action.ZONE, ZoneMove.ANOTHER_TEAM),
        (Action.ZONE, ZoneMove.ANOTHER_ZONE),
        (Action.CHIEF, 0.0),
        (Action.FAIL, 0.0),
    ]


def test_backoff_is_exponential_and_capped() -> None:
    policy = EscalationPolicy(
        EscalationConfig(team_retries=6, backoff_s=2.0, backoff_factor=3.0, backoff_max_s=50.0)
    )
    assert [policy.backoff(n) for n in range(1, 6)] == [2.0, 6.0, 18.0, 50.0, 50.0]


def test_infeasible_moves_are_skipped_not_spent() -> None:
    config = EscalationConfig(
        team_retries=1,
        zone_moves=(ZoneMove.ANOTHER_TEAM, ZoneMove.BIGGER_AGENT, ZoneMove.ANOTHER_ZONE),
        chief_retries=0,
    )
    feasible = Feasible(other_team=False, other_zone=False)
    steps = run_out(EscalationPolicy(config), feasible)
    assert [action for action, _ in steps] == [Action.RETRY, Action.ZONE, Action.FAIL]
    assert steps[1][1] is ZoneMove.BIGGER_AGENT


def test_no_other_agent_goes_straight_to_the_zone() -> None:
    decision = EscalationPolicy().on_failure(
        History(), "a", "A", "timeout", Feasible(other_agents=False)
    )
    assert decision.action is Action.ZONE
    assert decision.move is ZoneMove.ANOTHER_TEAM


def test_the_failure_reason_is_the_last_attempts() -> None:
    policy = EscalationPolicy(EscalationConfig(team_retries=0, zone_moves=(), chief_retries=0))
    decision = policy.on_failure(History(), "a", "A", "timeout", ALL)
    assert decision.action is Action.FAIL
    assert decision.reason == "timeout"
    assert decision.history.agents == ("a",)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError, match="budgets"):
        EscalationConfig(team_retries=-1)
    with pytest.raises(ValueError, match="backoff"):
        EscalationConfig(backoff_factor=0.5)


@given(
    team=st.integers(0, 4),
    moves=st.lists(st.sampled_from(list(ZoneMove)), max_size=3),
    chief=st.integers(0, 3),
    flags=st.tuples(*[st.booleans()] * 5),
)
def test_a_task_fails_after_at_most_budget_plus_one_attempts(
    team: int, moves: list[ZoneMove], chief: int, flags: tuple[bool, ...]
) -> None:
    """Whatever is feasible, it gives up within the budget; exactly at it when all is."""
    config = EscalationConfig(team_retries=team, zone_moves=tuple(moves), chief_retries=chief)
    feasible = Feasible(*flags)
    steps = run_out(EscalationPolicy(config), feasible)
    assert len(steps) <= config.budget + 1
    if all(flags):
        assert len(steps) == config.budget + 1
    # The levels come in order: retries, then zone moves, then the chief.
    order = {Action.RETRY: 0, Action.ZONE: 1, Action.CHIEF: 2, Action.FAIL: 3}
    levels = [order[action] for action, _ in steps]
    assert levels == sorted(levels)
