"""Placement of new agents and choice of agents to drain."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.policies.placement import PoolLoad, pick_drains, place_agents, team_for

pools_strategy = st.lists(
    st.builds(
        PoolLoad,
        zone=st.sampled_from(["A", "B"]),
        category=st.sampled_from(["x", "y", "z"]),
        agents=st.integers(0, 20),
        starting=st.integers(0, 3),
        busy=st.floats(0, 20),
        queued=st.floats(0, 200),
    ),
    min_size=1,
    max_size=6,
)


def test_new_agents_go_where_work_waits() -> None:
    pools = [
        PoolLoad("A", "CodeGen", agents=10, starting=0, busy=10, queued=80),
        PoolLoad("A", "Review", agents=10, starting=0, busy=2, queued=0),
    ]
    assert Counter(place_agents(10, pools)) == {("A", "CodeGen"): 10}


def test_a_large_step_spreads_over_hungry_pools() -> None:
    pools = [
        PoolLoad("A", "CodeGen", agents=4, starting=0, busy=4, queued=40),
        PoolLoad("B", "CodeGen", agents=4, starting=0, busy=4, queued=40),
    ]
    assert Counter(place_agents(10, pools)) == {("A", "CodeGen"): 5, ("B", "CodeGen"): 5}


def test_drains_come_from_idle_pools_and_keep_one_agent() -> None:
    pools = [
        PoolLoad("A", "CodeGen", agents=3, starting=0, busy=3, queued=5),
        PoolLoad("A", "Review", agents=3, starting=0, busy=0, queued=0),
    ]
    assert pick_drains(5, pools) == [("A", "Review"), ("A", "Review")]


@given(n=st.integers(0, 30), pools=pools_strategy)
def test_placement_counts(n: int, pools: list[PoolLoad]) -> None:
    placed = place_agents(n, pools)
    assert len(placed) == n
    assert set(placed) <= {(p.zone, p.category) for p in pools}


@given(n=st.integers(0, 30), pools=pools_strategy)
def test_drains_never_empty_a_pool_or_touch_a_queue(n: int, pools: list[PoolLoad]) -> None:
    drained = Counter(pick_drains(n, pools))
    assert sum(drained.values()) <= n
    for (zone, category), count in drained.items():
        matching = [p for p in pools if (p.zone, p.category) == (zone, category)]
        # Duplicate (zone, category) entries are independent pools to the policy.
        assert count <= sum(p.agents - 1 for p in matching if p.queued <= 0)


def test_team_for_takes_the_zones_teams_in_turn() -> None:
    teams = ("A-T01", "A-T02", "A-T03")
    assert [team_for(n, teams) for n in range(7)] == [
        "A-T01",
        "A-T02",
        "A-T03",
        "A-T01",
        "A-T02",
        "A-T03",
        "A-T01",
    ]


def test_team_for_refuses_a_zone_without_teams() -> None:
    with pytest.raises(ValueError, match="at least one team"):
        team_for(1, ())
