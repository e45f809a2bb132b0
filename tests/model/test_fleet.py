"""Agents joining from the reserve pool and draining gracefully, mid-run."""

from __future__ import annotations

import pytest
from support import short_baseline

from sim.model.engine import Simulation


def _at(sim: Simulation, when: float, action) -> None:
    sim.env.timeout(when).callbacks.append(lambda _: action())


def test_spawned_agents_join_after_the_delay_and_take_work() -> None:
    sim = Simulation(short_baseline(hours=0.5))
    requested: list[str | None] = []
    _at(
        sim,
        600,
        lambda: requested.extend(sim.fleet.spawn("B", "CodeGen", 90.0, "test") for _ in range(3)),
    )
    result = sim.run()
    assert all(requested)
    agents = result.agents.set_index("agent")
    for agent_id in requested:
        assert agents.loc[agent_id, "joined_s"] == 690.0
        assert agents.loc[agent_id, "from_reserve"]
    served = result.tasks[result.tasks["agent"].isin(requested)]
    assert len(served) > 0
    assert (served["start_s"] >= 690.0).all()
    assert sim.fleet.reserve.left == 50 - 3
    assert result.counts["lost"] == 0


def test_the_reserve_pool_runs_dry() -> None:
    sim = Simulation(short_baseline("topology.reserve_pool=2", hours=0.2))
    got = [sim.fleet.spawn("A", "Test", 0.0, "test") for _ in range(4)]
    assert [g is not None for g in got] == [True, True, False, False]


def test_draining_finishes_held_work_and_kills_nothing() -> None:
    sim = Simulation(short_baseline("topology.specialist.queue_limit=2", hours=0.5))
    victims = [a for a in sim.fleet.agents if a.startswith("A-CodeGen")][:5]
    _at(sim, 900, lambda: [sim.fleet.drain(a, "test") for a in victims])
    result = sim.run()
    assert result.counts["lost"] == 0
    tasks = result.tasks
    on_victims = tasks[tasks["agent"].isin(victims)]
    # Nothing that had started on a drained agent was abandoned.
    assert set(on_victims["outcome"]) <= {"completed"}
    agents = result.agents.set_index("agent")
    left = agents.loc[victims, "left_s"]
    assert (left >= 900).all() and (left < result.scenario.duration).all()
    # After leaving, a drained agent serves nothing more.
    for victim in victims:
        assert (on_victims.loc[on_victims["agent"] == victim, "end_s"] <= left[victim] + 1e-9).all()
        assert (on_victims.loc[on_victims["agent"] == victim, "dispatch_s"] <= 900 + 1e-9).all()
    events = result.events
    assert (events["kind"] == "agent_left").sum() == 5
    assert sim.fleet.reserve.left == 55  # drained agents return to the reserve


def test_zone_books_follow_the_fleet() -> None:
    sim = Simulation(short_baseline(hours=0.3))
    zone = sim.zones["C"]
    before = (zone.total_agents, zone.active_agents, zone.slots)
    victim = next(a for a in sim.fleet.agents if a.startswith("C-"))
    sim.fleet.drain(victim, "test")
    assert (zone.active_agents, zone.slots) == (before[1] - 1, before[2] - 1)
    sim.fleet.spawn("C", "Test", 0.0, "test")
    assert zone.active_agents == before[1]
    sim.run()
    assert zone.total_agents == before[0]  # one left, one joined


def test_cost_follows_each_agents_life() -> None:
    """The running cost meter and the bill from agents.parquet agree, scale events included."""
    from sim.metrics.cost import compute_cost, hourly_price

    sim = Simulation(short_baseline(hours=0.5))
    victims = [a for a in sim.fleet.agents if a.startswith("D-")][:4]
    _at(sim, 300, lambda: [sim.fleet.drain(a, "test") for a in victims])
    _at(sim, 600, lambda: sim.fleet.spawn("D", "Support", 30.0, "test"))
    result = sim.run()
    bill = compute_cost(result.scenario.cost, result.agents)
    final = result.metrics[result.metrics["level"] == "global"]["cost_usd"].iloc[-1]
    assert final == pytest.approx(bill, rel=1e-9)
    # A Tokyo specialist (1 vCPU, 2 GB) costs the region's price per hour.
    tokyo = hourly_price(result.scenario.cost, "ap-northeast-1", 1, 2)
    assert tokyo == pytest.approx(0.05056 + 2 * 0.00553)
    full_fleet = Simulation(short_baseline(hours=0.5)).run()
    saved = compute_cost(result.scenario.cost, full_fleet.agents) - bill
    assert saved > 0  # four agents drained early outweigh one added late
