"""Random and correlated spot reclaims replay exactly; the paid-hour drain; clear input errors."""

from __future__ import annotations

from typing import Any

import pytest
from support import short_baseline

from sim.model.engine import Simulation
from sim.replay import chaos_from_events, replay_scenario
from sim.scenario.schema import Scenario
from sim.world.workload import WorkloadError


def _with(scenario: Scenario, **sections: Any) -> Scenario:
    document = scenario.model_dump(mode="json")
    document.update(sections)
    return Scenario.model_validate(document)


def test_random_and_zone_wide_reclaims_lose_nothing_and_replay_bit_for_bit() -> None:
    spot = {
        "share": 0.5,
        "notice": 30.0,
        "reclaim_rate": 1.0,  # per spot agent-hour: a few dozen in 40 minutes
        "zone_reclaim_mtbf": 1200.0,
    }
    scenario = _with(short_baseline(hours=0.6), purchase={"spot": spot})
    first = Simulation(scenario).run()
    events = first.events
    notices = events[events["kind"] == "spot_notice"]
    assert len(notices) >= 20
    assert first.counts["lost"] == 0
    # Every notice came from a recorded chaos entry naming its agents.
    recorded = events[(events["kind"] == "chaos") & (events["subject"] == "spot_reclaim")]
    assert len(recorded) >= 1 and len(recorded) <= len(notices)
    left = first.agents.set_index("agent")["left_s"]
    for agent_id, at in zip(notices["subject"], notices["time_s"], strict=True):
        assert at <= left[agent_id] <= at + 30.0 + 1e-9
    timeline = chaos_from_events(events)
    assert all(e.spot_reclaim is not None and e.spot_reclaim.agents is not None for e in timeline)
    second = Simulation(replay_scenario(scenario, timeline)).run()
    assert second.events_sha256 == first.events_sha256
    assert second.counts == first.counts


def test_scale_down_can_prefer_the_agent_nearest_the_end_of_its_paid_hour() -> None:
    billing = {"unit": "hour", "drain_near_paid_end": True}
    sim = Simulation(_with(short_baseline(hours=1.1), purchase={"billing": billing}))
    late: list[str | None] = []
    sim.env.timeout(100.0).callbacks.append(
        lambda _: late.append(sim.fleet.spawn("A", "Test", 0.0, "test"))
    )
    sim.start()
    sim.env.run(until=3650.0)
    # The topology's agents are 3,650 s old (3,550 s of their second hour left);
    # the one spawned at 100 s is 3,550 s old: 50 s left.
    assert late[0] is not None and late[0].startswith("A-Test-r")
    assert sim.control._drain_choice("A", "Test") == late[0]


def test_a_reclaim_without_spot_capacity_is_a_one_line_error() -> None:
    scenario = _with(short_baseline(hours=0.2), chaos=[{"at": 60.0, "spot_reclaim": {}}])
    with pytest.raises(WorkloadError, match=r"chaos\[0\]\.spot_reclaim: no agent runs on spot"):
        Simulation(scenario)


def test_unknown_spot_names_are_refused_with_their_path() -> None:
    with pytest.raises(ValueError, match=r"purchase\.spot\.by_zone\.Z: unknown zone"):
        _with(short_baseline(hours=0.2), purchase={"spot": {"by_zone": {"Z": 0.5}}})
    with pytest.raises(ValueError, match=r"chaos\[0\]\.spot_reclaim\.zone: unknown zone"):
        _with(
            short_baseline(hours=0.2),
            purchase={"spot": {"share": 0.5}},
            chaos=[{"at": 60.0, "spot_reclaim": {"zone": "Z"}}],
        )
