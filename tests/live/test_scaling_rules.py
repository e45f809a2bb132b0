"""Scaling rules live as in the simulator: the reserve pool's books and the drain choice.

``topology.reserve_pool=2`` under burst.yaml's step policy (+6): both shells
ask for six and start two, and their ``scale`` records say so alike. With
hourly billing and ``drain_near_paid_end`` the scale-down drains the agent
whose paid hour ends soonest (``billing.drain_choice``), else the idlest.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conftest import HERE, agents_answer_calls
from test_coordinator_logic import EPOCH, Fleet, Provisioner, busy_burst_primary, run

from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.memory_broker import MemoryBroker
from sim.live.transport import AGENTS_BUCKET, EVENTS
from sim.policies.placement import pick_drains
from sim.runner import run as run_simulator
from sim.scenario.load import load_scenario

OVERRIDES = ["topology.reserve_pool=2"]


def first_scale(details: list[dict[str, Any]]) -> dict[str, Any]:
    up = [d for d in details if d["asked"] > 0]
    return {key: up[0][key] for key in ("delta", "asked")}


def test_a_scale_up_starts_only_what_the_reserve_pool_lends_in_both_shells() -> None:
    scenario = load_scenario(HERE / "burst.yaml", OVERRIDES)
    events = run_simulator(scenario).results[0].events
    sim_scale = [json.loads(str(d)) for d in events.loc[events["kind"] == "scale", "detail"]]
    assert first_scale(sim_scale) == {"delta": 2, "asked": 6}
    assert (events["kind"] == "agent_requested").sum() == 2

    async def body() -> None:
        provisioner = Provisioner()
        # burst.yaml's two specialists, both busy, and twenty tasks waiting
        c, broker = await busy_burst_primary(scenario, provisioner, busy=2, queued=20)
        await c.evaluate(60.0)
        documents = await broker.read_all(EVENTS, "orch.event")
        live_scale = [json.loads(e["detail"]) for e in documents if e["kind"] == "scale"]
        assert first_scale(live_scale) == first_scale(sim_scale)
        assert len(provisioner.started) == len(c.requested) == 2
        assert c.scaling.reserve.left == 0

    asyncio.run(body())


async def drained_at_3650(*overrides: str) -> list[str]:
    """g0 and g1 joined at second 0, g2 at 100 s; all idle at 3,650 s: which one drains."""
    scenario = load_scenario(HERE / "burst.yaml", ["scaling.min_agents=5", *overrides])
    wall = [EPOCH]
    broker = MemoryBroker.orchestra(("A",), wall=lambda: wall[0])
    agents_answer_calls(broker)
    config = CoordinatorConfig("memory://", None, Clock(EPOCH, 1.0), wall=lambda: wall[0])
    c = Coordinator("c1", scenario, config, Provisioner(), ("A",), ("Generic",), broker=broker)

    async def beat(agent: str) -> None:
        doc = {"agent": agent, "zone": "A", "category": "Generic", "status": "idle"}
        doc.update(in_flight=0, slots=1, speed=1.0, wall=wall[0])
        await broker.kv_put(AGENTS_BUCKET, agent, json.dumps(doc).encode())

    for agent in ("g0", "g1"):
        await beat(agent)
    await c.take_over()
    wall[0] = EPOCH + 100.0
    for agent in ("g0", "g1", "g2"):
        await beat(agent)
    await c.check_health()
    wall[0] = EPOCH + 3650.0
    for agent in ("g0", "g1", "g2"):
        await beat(agent)
    await c.check_health()
    await c.evaluate(3650.0)
    return sorted(a for a, view in c.agents.items() if view.draining)


def test_a_scale_down_drains_near_the_paid_hours_end_when_asked_else_the_idlest() -> None:
    billing = ["purchase.billing.unit=hour", "purchase.billing.drain_near_paid_end=true"]
    # 3,550 s of g0's and g1's second hour are left; 50 s of g2's first.
    assert asyncio.run(drained_at_3650(*billing)) == ["g2"]
    assert asyncio.run(drained_at_3650()) == ["g0"]  # the idlest, then by id


def test_an_alerts_scale_up_does_nothing_when_the_scenario_has_no_autoscaler() -> None:
    """``scale_up_immediate`` forces the autoscaler only where one runs (as the simulator)."""
    rule = '{critical: [{name: q, condition: "queue_depth > 3", action: scale_up_immediate}]}'

    async def body(enabled: bool) -> list[str]:
        overrides = [f"alerts={rule}", f"scaling.auto_scale.enabled={str(enabled).lower()}"]
        scenario = load_scenario(HERE / "burst.yaml", overrides)
        c, broker = await busy_burst_primary(scenario, Provisioner(), busy=2, queued=10)
        await c.sample(60.0)
        documents = await broker.read_all(EVENTS, "orch.event")
        return [e["kind"] for e in documents if e["kind"] in ("alert", "scale")]

    assert asyncio.run(body(enabled=True)) == ["alert", "scale"]
    assert asyncio.run(body(enabled=False)) == ["alert"]


def test_the_drain_choice_reads_busy_slots_from_the_coordinators_books() -> None:
    """A pool's busy slots are the attempts the books hold as started, not the heartbeats'.

    Zone A's two agents have started a task each; their last heartbeats (from before
    the tasks) say idle. The simulator's scaler sees A busy and B idle, so its
    scale-down drains B first (``pick_drains``); live must see the same.
    """

    async def body(fleet: Fleet) -> None:
        for agent, zone in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B")):
            await fleet.beat(agent, zone, held=0)
        c = fleet.coordinator()
        await c.take_over()
        await fleet.submit(0, 1, zone="A")
        await c.pump()
        taken = {agent: await fleet.take(agent) for agent in ("a1", "a2")}
        assert sorted(taken.values()) == [[(0, 1)], [(1, 1)]]
        for agent, [(task, _)] in taken.items():
            await fleet.result("start", task, agent)
        await c.pump()
        busy = {(p.zone, p.category): p.busy for p in c.scaling.pools() if p.agents}
        assert busy == {("A", "CodeGen"): 2, ("B", "CodeGen"): 0}
        assert pick_drains(1, c.scaling.pools()) == [("B", "CodeGen")]

    run(body)


def test_a_new_primary_keeps_its_predecessors_scale_down_cooldown() -> None:
    """The spec's chiefs keep the autoscaler's decisions through Raft: a coordinator taking
    over reads its predecessor's scale changes back from the event log, so the cooldown runs
    on. At the spec's fleet a new primary had scaled down again four minutes after the first
    primary's scale-down, inside the cooldown, where the simulator held."""

    async def body() -> list[tuple[float, int]]:
        scenario = load_scenario(HERE / "burst.yaml", ["scaling.min_agents=4"])
        wall = [EPOCH]
        broker = MemoryBroker.orchestra(("A",), wall=lambda: wall[0])
        agents_answer_calls(broker)
        config = CoordinatorConfig("memory://", None, Clock(EPOCH, 1.0), wall=lambda: wall[0])

        def coordinator(name: str) -> Coordinator:
            return Coordinator(
                name, scenario, config, Provisioner(), ("A",), ("Generic",), broker=broker
            )

        async def beat(agent: str, status: str = "idle") -> None:
            doc = {"agent": agent, "zone": "A", "category": "Generic", "status": status}
            doc.update(in_flight=0, slots=1, speed=1.0, wall=wall[0])
            await broker.kv_put(AGENTS_BUCKET, agent, json.dumps(doc).encode())

        fleet = ["g0", "g1", "g2", "g3"]
        for agent in fleet:
            await beat(agent)
        first = coordinator("c1")
        await first.take_over()
        wall[0] = EPOCH + 60.0
        await first.evaluate(60.0)  # all idle: scale down by 2
        drained = sorted(a for a, view in first.agents.items() if view.draining)
        assert len(drained) == 2
        wall[0] = EPOCH + 100.0  # the drained ones went offline; the first primary is gone
        for agent in fleet:
            await beat(agent, "offline" if agent in drained else "idle")
        second = coordinator("c2")
        await second.take_over()
        for at in (120.0, 180.0):
            wall[0] = EPOCH + at
            for agent in fleet:
                if agent not in drained:
                    await beat(agent)
            await second.check_health()
            await second.evaluate(at)
        documents = await broker.read_all(EVENTS, "orch.event")
        return [
            (float(d["time_s"]), int(json.loads(d["detail"])["delta"]))
            for d in documents
            if d["kind"] == "scale"
        ]

    # The second primary holds at 120 s (60 s into the 120 s cooldown) and scales at 180 s.
    assert asyncio.run(body()) == [(60.0, -2), (180.0, -1)]
