"""The topology as built from a scenario."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from sim.scenario.load import scenario_from_dict
from sim.scenario.schema import Scenario
from sim.world.topology import amdahl_speed, build_world, largest_remainder


def test_spec_fleet_is_200_agents_with_173_specialists() -> None:
    world = build_world(Scenario(), np.random.default_rng(0))
    roles = Counter(c.role for c in world.coordinators)
    assert roles == {"chief": 3, "zone_coordinator": 4, "zone_standby": 4, "team_lead": 20}
    assert len(world.specialists) == 173
    assert world.total_agents == 200
    per_category = Counter(s.category for s in world.specialists)
    # Largest remainder of 173 seats over the spec's table (which sums to 200).
    assert per_category == {
        "CodeGen": 34,
        "Review": 17,
        "Test": 22,
        "DevOps": 13,
        "Documentation": 13,
        "Security": 9,
        "Research": 17,
        "Design": 13,
        "Integration": 13,
        "Support": 22,
    }
    per_zone = Counter(s.zone for s in world.specialists)
    assert sorted(per_zone.values()) == [43, 43, 43, 44]
    teams = Counter(s.team for s in world.specialists)
    assert len(teams) == 20 and max(teams.values()) - min(teams.values()) <= 1


@given(
    total=st.integers(0, 500),
    weights=st.lists(st.floats(0.01, 100), min_size=1, max_size=12),
)
def test_largest_remainder_is_exact_and_fair(total: int, weights: list[float]) -> None:
    named = {f"c{i}": w for i, w in enumerate(weights)}
    seats = largest_remainder(total, named)
    assert sum(seats.values()) == total
    share = sum(weights)
    for name, w in named.items():
        quota = total * w / share
        assert int(quota) <= seats[name] <= int(quota) + 1  # quota rule


def test_other_topologies_are_expressible() -> None:
    scenario = scenario_from_dict(
        {
            "topology": {
                "control_plane": {"chiefs": 5},
                "zones": [
                    {"name": "east", "region": "us-east-1", "team_leads": 2, "specialists": 10},
                    {
                        "name": "tokyo",
                        "region": "ap-northeast-1",
                        "team_leads": 1,
                        "categories": {"CodeGen": 4, "Review": 0},
                    },
                ],
                "categories": {"CodeGen": 3, "Review": 1},
                "specialist": {"slots": 2, "queue_limit": 3, "vcpu": 2},
            }
        }
    )
    world = build_world(scenario, np.random.default_rng(1))
    by_zone = Counter((s.zone, s.category) for s in world.specialists)
    assert by_zone[("tokyo", "CodeGen")] == 4 and by_zone[("tokyo", "Review")] == 0
    assert by_zone[("east", "CodeGen")] + by_zone[("east", "Review")] == 10
    agent = world.specialists[0]
    assert (agent.slots, agent.capacity, agent.vcpu, agent.mem_gb) == (2, 5, 2, 4)
    assert agent.speed == amdahl_speed(2, 1, 0.5) > 1.0
    assert sum(1 for c in world.coordinators if c.role == "chief") == 5


def test_speed_heterogeneity_has_the_requested_spread() -> None:
    scenario = scenario_from_dict(
        {"topology": {"specialists": 4000, "specialist": {"speed_cv": 0.3}}}
    )
    speeds = np.array(
        [s.speed for s in build_world(scenario, np.random.default_rng(2)).specialists]
    )
    # Mean 1 and CV 0.3 within a few standard errors of 4,000 draws.
    assert abs(speeds.mean() - 1.0) < 4 * 0.3 / np.sqrt(len(speeds))
    assert abs(speeds.std() / speeds.mean() - 0.3) < 0.03
