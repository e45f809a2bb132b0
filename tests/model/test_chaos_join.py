"""Chaos ``join``: a specialist that starts itself joins the fleet at its time.

A service's agents are not all the autoscaler's: ``orchestra live agent``
starts one wherever an operator runs it. A record window's replay must add
those at the seconds they joined, or it serves the window's early arrivals
with agents that were not there yet (``sim.live.segment_fleet``).
"""

from __future__ import annotations

import json

import pytest
from support import assert_conserved, short_baseline

from sim.model.engine import run_scenario
from sim.scenario.load import ScenarioError

JOINS = (
    "chaos=[{at: 20m, join: {zone: A, category: CodeGen, agent: A-CodeGen-s0001}},"
    " {at: 30m, join: {zone: B, category: Review}}]"
)


def test_a_joined_agent_is_there_from_its_second_and_serves_from_then() -> None:
    result = run_scenario(short_baseline(JOINS))
    agents = result.agents.set_index("agent")
    named = agents.loc["A-CodeGen-s0001"]
    assert named["joined_s"] == 1200.0 and not named["from_reserve"]
    assert named["zone"] == "A" and named["category"] == "CodeGen"
    [unnamed] = [a for a in agents.index if a.startswith("B-Review-j")]
    assert agents.loc[unnamed, "joined_s"] == 1800.0
    tasks = result.tasks
    for agent, since in (("A-CodeGen-s0001", 1200.0), (unnamed, 1800.0)):
        served = tasks[tasks["agent"] == agent]
        assert len(served) > 0 and served["start_s"].min() >= since
    events = result.events
    joined = events[(events["kind"] == "agent_joined") & (events["subject"] == "A-CodeGen-s0001")]
    assert joined["time_s"].tolist() == [1200.0]
    # Logged as chaos, so a replay of this run's log plays the same joins.
    played = events[events["kind"] == "chaos"]["detail"].map(lambda d: json.loads(d)["event"])
    assert [e["join"]["zone"] for e in played] == ["A", "B"]
    # Nothing lent by the reserve pool, nothing asked for.
    assert "agent_requested" not in set(events["kind"])
    assert_conserved(result)


def test_a_joined_agent_can_be_named_by_a_later_kill() -> None:
    chaos = (
        "chaos=[{at: 20m, join: {zone: A, category: CodeGen, agent: A-CodeGen-s0001}},"
        " {at: 40m, kill: {agents: [A-CodeGen-s0001]}}]"
    )
    result = run_scenario(short_baseline(chaos))
    failed = result.events[result.events["kind"] == "agent_failed"]
    assert failed["subject"].tolist() == ["A-CodeGen-s0001"]
    assert_conserved(result)


@pytest.mark.parametrize(
    ("join", "expected"),
    [
        ("{zone: Z, category: CodeGen}", "chaos[0].join.zone: unknown zone 'Z'"),
        ("{zone: A, category: Poetry}", "chaos[0].join.category: unknown category 'Poetry'"),
        ("{zone: A}", "chaos[0].join.category: expected field required"),
    ],
)
def test_a_bad_join_is_named_by_its_path(join: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        short_baseline(f"chaos=[{{at: 20m, join: {join}}}]")
    assert expected in str(caught.value) and "\n" not in str(caught.value)
