"""Tiers and spot on a real fleet: NATS, a primary coordinator, simulated agents, the wall clock.

tiers_spot.yaml: 8 specialists (capacity about 16 tasks a minute) offered 40,
in three tiers, half of them on spot; at 1 min zone A's spot agents get a
30 s reclaim notice. Checked only what does not depend on the machine keeping
up: every verdict the live intake recorded is the pure admission policy's on
the observation it recorded, replayed in order (the same decision as the
simulator's, not a look-alike); the lower tiers lost the larger share
(batch above standard above critical); conservation with ``shed`` holds and
nothing is lost; the reclaimed agents got their notice, were given no work
after it, and left; whatever they held is completed elsewhere.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import HERE, run_live

from sim.live.transport import EmbeddedServer, connect, read_records
from sim.policies.admission import AdmissionObservation
from sim.scenario.load import load_scenario
from sim.world.tier_mix import admission_policy

#: Scenario seconds of clock skew between two stamps of the coordinator (``now`` vs ``raw``).
SKEW_S = 1.0


async def _records(store: Path, zones: list[str]) -> list[dict[str, Any]]:
    """The run's dispatch records and results, read back from its broker's store."""
    server = EmbeddedServer(store)
    server.start()
    try:
        nc = await connect(server.url, server.token, "test-read-back")
        try:
            return await read_records(nc.jetstream(), zones)
        finally:
            await nc.close()
    finally:
        server.stop()


def test_overload_sheds_by_tier_and_a_spot_reclaim_loses_nothing(tmp_path: Path) -> None:
    scenario = load_scenario(HERE / "tiers_spot.yaml", ["seed=14"])
    assert scenario.tiers is not None
    run = run_live(scenario, tmp_path, time_scale=40.0, agents_mode="simulated")
    summary, tasks = run.summary, run.summary["tasks"]

    # Conservation with shed, nothing lost, nothing failed (a reclaim is off the budget).
    assert tasks["lost"] == 0 and tasks["failed"] == 0, tasks
    parts = tasks["completed"] + tasks["failed"] + tasks["shed"] + tasks["in_flight"]
    assert tasks["submitted"] == parts, tasks
    assert summary["drained"]["unfinished"] == 0

    # The verdicts are the pure policy's, on the observations recorded, in the order the
    # primary decided (the policy's hysteresis makes order matter; under load, the zones'
    # submissions may reach the primary in another order than their ids').
    records = asyncio.run(_records(tmp_path / "store", [z.name for z in scenario.topology.zones]))
    verdicts = sorted((d for d in records if d["kind"] == "admission"), key=lambda d: d["order"])
    assert len(verdicts) == tasks["submitted"]
    assert [d["order"] for d in verdicts] == list(range(len(verdicts)))  # one primary, no gaps
    names = [level.name for level in scenario.tiers.levels]
    policy = admission_policy(scenario.tiers)
    for verdict in verdicts:
        obs = AdmissionObservation(
            names.index(verdict["tier"]),
            int(verdict["queue_depth"]),
            provider_used=float(verdict["provider_used"]),
            tenant_overdraft=float(verdict["tenant_overdraft"]),
        )
        assert policy.decide(obs).admit == (verdict["admission"] == "admitted"), verdict
    shed = {row["tier"]: row for row in summary["tiers"]["by_tier"]}
    assert tasks["shed"] == sum(row["shed"] for row in shed.values()) > 0
    assert shed["batch"]["shed_share"] > shed["standard"]["shed_share"]
    assert shed["standard"]["shed_share"] >= shed["critical"]["shed_share"]
    assert 0.0 < summary["tenants"]["jain"] <= 1.0
    metrics = run.result.metrics
    sampled = metrics.loc[metrics["level"] == "tier", "tasks_shed"].sum()
    assert 0 < sampled <= tasks["shed"]  # (what was shed after the last sample is not in it)
    purchase = metrics[(metrics["level"] == "purchase") & (metrics["id"] == "spot")]
    assert len(purchase) > 0 and purchase["total_agents"].max() >= 4

    # The reclaim: zone A's spot agents, a notice each, drained, gone, nothing lost.
    events = run.result.events
    notices = events[events["kind"] == "spot_notice"]
    victims = set(notices["subject"])
    agents = run.result.agents
    starting = agents[~agents["from_reserve"].astype(bool)]  # (replacements join later)
    on_spot = set(starting.loc[starting["spot"].eq(True) & starting["zone"].eq("A"), "agent"])
    assert victims == on_spot and len(victims) == 2
    assert summary["cost"]["reclaims"] == 2 and summary["cost"]["usd_spot"] > 0
    draining = events[(events["kind"] == "agent_draining") & events["subject"].isin(victims)]
    drained_at = dict(zip(draining["subject"], draining["time_s"], strict=True))
    assert set(drained_at) == victims
    left = events[events["kind"].isin(["agent_left", "agent_reclaimed"])]
    assert victims <= set(left["subject"])
    attempts = run.result.tasks
    for victim, at in drained_at.items():
        later = attempts[(attempts["agent"] == victim) & (attempts["dispatch_s"] > at + SKEW_S)]
        assert later.empty, later  # no new work after the notice
    # What the victims held and did not finish was completed elsewhere.
    held = set(attempts.loc[attempts["agent"].isin(victims), "task_id"])
    done = set(attempts.loc[attempts["outcome"] == "completed", "task_id"])
    done |= set(run.drained["task_id"]) if run.drained is not None else set()
    assert held <= done
