"""Spot capacity in the simulator: reclaims lose nothing, drain within the notice, cost less.

One short baseline run with half the fleet on spot and zone B's whole spot
share reclaimed at 20 minutes; the notice is short (15 s) so that some
agents still hold work at the deadline and their re-queueing is exercised.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pytest
from support import short_baseline

from sim.metrics.cost import cost_split
from sim.metrics.result import RunResult
from sim.model.engine import Simulation
from sim.runner import summary_of as summarize
from sim.scenario.schema import Scenario
from sim.scenario.spot import Billing, Purchase

RECLAIM_AT = 1200.0
NOTICE = 15.0


def _with(scenario: Scenario, **sections: Any) -> Scenario:
    """*scenario* with sections replaced, validated as a whole (cross-checks included)."""
    document = scenario.model_dump(mode="json")
    document.update(sections)
    return Scenario.model_validate(document)


def _spot_scenario() -> Scenario:
    return _with(
        short_baseline(hours=0.5),
        purchase={"spot": {"share": 0.5, "discount": 0.7, "notice": NOTICE}},
        chaos=[{"at": RECLAIM_AT, "spot_reclaim": {"zone": "B"}}],
    )


@pytest.fixture(scope="module")
def spot_run() -> tuple[Simulation, RunResult, list[str]]:
    sim = Simulation(_spot_scenario())
    market = sim.fleet.market
    assert market is not None
    zone_b_spot: list[str] = []
    sim.env.timeout(RECLAIM_AT - 1e-6).callbacks.append(
        lambda _: zone_b_spot.extend(
            a.id for a in sim.fleet.agents.values() if a.zone == "B" and market.is_spot(a.id)
        )
    )
    return sim, sim.run(), zone_b_spot


def test_a_zone_reclaim_takes_its_whole_spot_share_and_nothing_else(spot_run) -> None:
    _, result, zone_b_spot = spot_run
    events = result.events
    notices = events[events["kind"] == "spot_notice"]
    assert sorted(notices["subject"]) == sorted(zone_b_spot)
    assert len(zone_b_spot) >= 15  # half of zone B's ~43 specialists
    assert (notices["time_s"] == RECLAIM_AT).all()
    agents = result.agents.set_index("agent")
    assert agents.loc[zone_b_spot, "spot"].all()
    # The share held: half of each pool, rounded half up.
    specialists = result.agents[result.agents["role"] == "specialist"]
    at_start = specialists[specialists["joined_s"] == 0.0]
    for (zone, category), pool in at_start.groupby(["zone", "category"]):
        assert pool["spot"].sum() == math.floor(0.5 * len(pool) + 0.5), (zone, category)


def test_every_reclaimed_agent_is_gone_by_its_deadline(spot_run) -> None:
    _, result, zone_b_spot = spot_run
    left = result.agents.set_index("agent").loc[zone_b_spot, "left_s"]
    assert (left >= RECLAIM_AT).all()
    assert (left <= RECLAIM_AT + NOTICE + 1e-9).all()
    tasks = result.tasks
    on_them = tasks[tasks["agent"].isin(zone_b_spot)]
    # After the notice nothing new starts on a reclaimed agent.
    assert (on_them["dispatch_s"] <= RECLAIM_AT + 1e-9).all()


def test_each_reclaimed_agent_is_replaced_from_the_reserve_pool(spot_run) -> None:
    _, result, zone_b_spot = spot_run
    events = result.events
    asked = events[events["kind"] == "agent_requested"]
    reasons = [f"replace reclaimed {agent_id}" for agent_id in zone_b_spot]
    replacing = asked[asked["detail"].str.contains("replace reclaimed", regex=False)]
    assert sorted(json.loads(d)["reason"] for d in replacing["detail"]) == sorted(reasons)
    assert (replacing["time_s"] == RECLAIM_AT).all()
    newcomers = result.agents[result.agents["joined_s"] == RECLAIM_AT + 60.0]  # spawn delay
    assert len(newcomers) == len(zone_b_spot)
    assert (newcomers["zone"] == "B").all()
    # Zone B's spot agents are gone by then: the newcomers restore the pools' spot share.
    assert newcomers["spot"].sum() >= len(zone_b_spot) // 2


def test_work_held_at_the_deadline_is_requeued_and_completes(spot_run) -> None:
    _, result, _ = spot_run
    assert result.counts["lost"] == 0
    tasks = result.tasks
    requeued = tasks[(tasks["outcome"] == "retried") & (tasks["reason"] == "spot_reclaim")]
    assert len(requeued) >= 1  # the short notice left work on some agents
    assert (requeued["end_s"] == RECLAIM_AT + NOTICE).all()
    finals = tasks[tasks["task_id"].isin(requeued["task_id"])]
    outcomes = finals.groupby("task_id")["outcome"].agg(set)
    assert all("completed" in o or "in_flight" in o for o in outcomes)
    assert sum("completed" in o for o in outcomes) == len(outcomes)
    reclaimed = result.events[result.events["kind"] == "agent_reclaimed"]
    moved = sum(json.loads(d)["redistributed"] for d in reclaimed["detail"])
    assert moved == len(requeued)


def test_the_meter_and_the_bill_agree_with_spot_discounts(spot_run) -> None:
    _, result, _ = spot_run
    purchase = result.scenario.purchase
    usd_spot, usd_on_demand = cost_split(result.scenario.cost, purchase, result.agents)
    final = result.metrics[result.metrics["level"] == "global"]["cost_usd"].iloc[-1]
    assert final == pytest.approx(usd_spot + usd_on_demand, rel=1e-9)
    summary = summarize(result)
    assert summary["cost"]["reclaims"] == len(spot_run[2])
    assert summary["cost"]["usd_spot"] == pytest.approx(usd_spot)


def test_hourly_billing_costs_at_least_per_second_billing(spot_run) -> None:
    _, result, _ = spot_run
    cost, agents = result.scenario.cost, result.agents
    spot = result.scenario.purchase.spot

    def bill(unit: str, minimum: float) -> float:
        purchase = Purchase(billing=Billing(unit=unit, minimum=minimum), spot=spot)
        return sum(cost_split(cost, purchase, agents))

    continuous, second, hour = bill("continuous", 0), bill("second", 60), bill("hour", 0)
    assert continuous <= second <= hour
    assert hour > 1.2 * second  # 30-minute lives billed as whole hours


def test_spot_costs_less_on_the_same_seed(spot_run) -> None:
    _, with_spot, _ = spot_run
    without = Simulation(short_baseline(hours=0.5)).run()
    spot_bill = summarize(with_spot)["cost"]
    plain_bill = summarize(without)["cost"]
    assert plain_bill["usd_spot"] == 0.0 and plain_bill["reclaims"] == 0
    assert spot_bill["usd_total"] < 0.85 * plain_bill["usd_total"]
    assert without.counts["lost"] == 0
    assert pd.notna(spot_bill["usd_on_demand"])
