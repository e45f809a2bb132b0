"""Tiers and spot in the live shell, on the in-memory broker: the simulator's decisions, live.

Admission: the coordinator asks the pure admission policy about each
submitted task, records the verdict with what it saw, sheds lowest tier
first, and a takeover keeps the verdicts. Spot: a notice drains the agent (no
new work), and what it holds at the deadline is placed again off the retry
budget. The fold of the records counts ``shed`` in the conservation rule and
writes the tiers table the summary's tiers and tenants blocks read. The
simulator and the live run draw the same tiers and tenants and put the same
agents on spot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import small
from test_coordinator_logic import EPOCH, Fleet, Provisioner, run

from sim.live.agent import add_agent_arguments
from sim.live.broker import encode, unbundle
from sim.live.chaos import ChaosTimeline
from sim.live.clock import Clock
from sim.live.coordinator import Coordinator, CoordinatorConfig
from sim.live.coordinator.admission import LiveAdmission
from sim.live.coordinator.llm_gate import LlmGate
from sim.live.provisioner import AgentSpec, LocalProcessProvisioner
from sim.live.records import build_records
from sim.live.runtime import arrivals
from sim.live.snapshot import Snapshot, fold
from sim.live.spot_notices import SPOT_NOTICES_KEY, reclaim_victims
from sim.live.task_message import InvalidMessage, Pools, validate
from sim.live.transport import (
    AGENTS_BUCKET,
    LEASE_BUCKET,
    METRICS,
    control_subject,
    dispatch_stream,
    dispatch_subject,
)
from sim.model.engine import Simulation
from sim.policies.admission import AdmissionObservation
from sim.scenario.load import load_scenario
from sim.scenario.schema import ChaosEvent, Scenario
from sim.scenario.spot import Purchase, Spot, SpotReclaim
from sim.scenario.tiers import Tiers
from sim.world.spot_books import initial_reclaims, initial_spot
from sim.world.streams import Streams
from sim.world.tier_mix import admission_policy
from sim.world.topology import build_world

TIERS = ("critical", "standard", "batch")
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "task-message.schema.json").read_text())


def tiered(queue_limit: int = 10, *overrides: str) -> Scenario:
    scenario = small("policies.load_balancing=round_robin", *overrides)
    tiers = Tiers(queue_limit=queue_limit, tenants={"t1": {"share": 1}, "t2": {"share": 1}})
    return scenario.model_copy(update={"tiers": tiers})


def spotted(*overrides: str) -> Scenario:
    scenario = small("policies.load_balancing=round_robin", *overrides)
    purchase = Purchase(spot=Spot(share=0.5, notice=120.0))
    return scenario.model_copy(update={"purchase": purchase})


def coordinator(fleet: Fleet, scenario: Scenario, name: str = "c1") -> Coordinator:
    config = CoordinatorConfig(
        "memory://", None, Clock(EPOCH, 1.0), wall=fleet.wall, autoscale=False, replies=True
    )
    return Coordinator(
        name, scenario, config, Provisioner(), ("A", "B"), ("CodeGen", "Review"), fleet.broker
    )


async def submit(fleet: Fleet, task_id: int, tier: str, tenant: str = "t1") -> None:
    document = {
        "kind": "task",
        "task_id": task_id,
        "category": "CodeGen",
        "zone": "A",
        "arrival_s": fleet.wall.t - EPOCH,
        "work_s": 10.0,
        "tier": tier,
        "tenant": tenant,
    }
    await fleet.broker.publish("orch.submit", document, f"sub.{task_id}.task")


async def records(fleet: Fleet, kind: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for zone in ("A", "B"):
        raw = await fleet.broker.read_all(dispatch_stream(zone), dispatch_subject(zone))
        docs += [d for d in unbundle(raw) if d["kind"] == kind]
    return sorted(docs, key=lambda d: int(d["task_id"]))


# ---------------------------------------------------------------------- tiers


def test_overload_sheds_the_lowest_tier_first_with_the_simulators_policy() -> None:
    """No task starts: the queue grows with each admitted task until the cap sheds.

    Every verdict is the pure policy's on the observation the record keeps, and
    the observed queue is the tasks admitted before but the first, which is on
    its way to the agent's one free slot (the simulator's count: that task waits
    for no agent): each tier is shed exactly from its threshold on, batch from
    half the cap (5), standard from 80 % (8), critical only at the cap (10).
    """

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1")
        c = coordinator(fleet, tiered(10))
        await c.take_over()
        for n in range(36):
            await submit(fleet, n, TIERS[n % 3], ("t1", "t2")[n % 2])
        await c.pump()
        verdicts = await records(fleet, "admission")
        assert [v["task_id"] for v in verdicts] == list(range(36))
        policy = admission_policy(c.scenario.tiers)
        admitted = 0
        for v in verdicts:
            assert v["queue_depth"] == max(admitted - 1, 0)  # nothing started: all but one wait
            obs = AdmissionObservation(TIERS.index(v["tier"]), v["queue_depth"])
            expected = policy.decide(obs)
            assert (v["admission"] == "admitted") == expected.admit, v
            admitted += v["admission"] == "admitted"
        for tier, at in {"batch": 5, "standard": 8, "critical": 10}.items():
            seen = [(v["queue_depth"], v["admission"]) for v in verdicts if v["tier"] == tier]
            assert all((queue >= at) == (verdict == "shed") for queue, verdict in seen), seen
            assert any(verdict == "shed" for _, verdict in seen)
        assert all(v["reason"] == "queue" for v in verdicts if v["admission"] == "shed")
        shed = [v["task_id"] for v in verdicts if v["admission"] == "shed"]
        assert c.counters.shed == len(shed) and c.counters.submitted == 36
        assert all(c.tasks[t].done and not c.tasks[t].dispatched for t in shed)
        replies = fleet.broker.waiting("ORCH_REPLIES", f"orch.reply.task.{shed[0]}")
        assert replies[-1]["outcome"] == "shed" and replies[-1]["reason"] == "queue"
        # The metrics sample has the tier rows: tasks shed per tier since the last one.
        await c.sample(60.0)
        rows = [r for r in fleet.broker.waiting(METRICS) if r["level"] == "tier"]
        assert {r["id"]: r["tasks_shed"] for r in rows} == {
            tier: sum(1 for v in verdicts if v["tier"] == tier and v["admission"] == "shed")
            for tier in TIERS
        }
        # A takeover keeps every verdict: nothing decided again, nothing shed is placed.
        second = coordinator(fleet, c.scenario, "c2")
        await second.take_over()
        assert len(await records(fleet, "admission")) == 36
        assert second.counters.shed == len(shed)
        assert all(second.tasks[t].done for t in shed)

    run(body)


def test_the_fold_counts_shed_in_conservation_and_writes_the_tiers_table() -> None:
    scenario = tiered(10)
    world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
    agent = world.specialists[0]

    def task(n: int, tier: str, tenant: str) -> dict[str, Any]:
        return {
            "kind": "task",
            "task_id": n,
            "category": "CodeGen",
            "zone": "A",
            "arrival_s": 10.0 + n,
            "work_s": 5.0,
            "tier": tier,
            "tenant": tenant,
        }

    submits = [
        task(0, "critical", "t1"),
        task(1, "batch", "t2"),
        task(2, "batch", "t1"),
        task(3, "standard", "t2"),
    ]
    verdicts = [
        {
            "kind": "admission",
            **{k: d[k] for k in ("task_id", "category", "zone", "arrival_s", "tier", "tenant")},
            "admission": "shed" if d["task_id"] in (1, 2) else "admitted",
            "reason": "queue" if d["task_id"] in (1, 2) else "",
        }
        for d in submits
    ]
    where = {"agent": agent.agent_id, "zone": "A"}
    results = [
        *verdicts,
        {"kind": "assign", "task_id": 0, "attempt": 1, **where, "assign_s": 10.0},
        {"kind": "start", "task_id": 0, "attempt": 1, **where, "start_s": 10.0},
        {
            "kind": "end",
            "task_id": 0,
            "attempt": 1,
            **where,
            "start_s": 10.0,
            "end_s": 15.0,
            "outcome": "completed",
        },
        {"kind": "assign", "task_id": 3, "attempt": 1, **where, "assign_s": 15.0},
        {"kind": "start", "task_id": 3, "attempt": 1, **where, "start_s": 15.0},
    ]
    folded = build_records(scenario, world, 1.0, scenario.duration, submits, results, [], [])
    counts = folded.counts
    assert (counts["submitted"], counts["completed"], counts["shed"]) == (4, 1, 2)
    assert (counts["in_flight"], counts["lost"]) == (1, 0)
    assert set(folded.tasks["task_id"]) == {0, 3}  # a shed task has no attempt row
    summary, _ = folded.summary(scenario)
    assert summary["tasks"]["shed"] == 2
    by_tier = {row["tier"]: row for row in summary["tiers"]["by_tier"]}
    assert by_tier["batch"]["shed"] == 2 and by_tier["batch"]["shed_share"] == 1.0
    assert by_tier["critical"]["completed"] == 1
    tenants = {row["tenant"]: row for row in summary["tenants"]["by_tenant"]}
    assert tenants["t1"]["completed"] == 1 and tenants["t2"]["completed"] == 0
    # x_t1 = (1/1) / (2/4) = 2, x_t2 = 0: Jain = 4 / (2 * 4) = 0.5
    assert summary["tenants"]["jain"] == pytest.approx(0.5)


def test_a_live_run_stamps_the_tiers_and_tenants_the_simulator_draws() -> None:
    scenario = tiered(10).model_copy(update={"duration": 240.0})
    sim = Simulation(scenario, 0)
    result = sim.run()
    assert result.tiers is not None
    drawn = list(zip(result.tiers["tier"], result.tiers["tenant"], strict=True))
    live = [
        (d["tier"], d["tenant"])
        for t, d in arrivals(scenario)
        if d["kind"] == "task" and t < scenario.duration
    ]
    assert len(drawn) > 100 and live[: len(drawn)] == drawn


def test_the_task_message_names_a_tier_and_a_tenant_of_the_deployment() -> None:
    pools = Pools(frozenset({"A"}), frozenset({"CodeGen"}), frozenset(TIERS), frozenset({"t1"}))
    doc = {
        "kind": "task",
        "task_id": 1,
        "category": "CodeGen",
        "zone": "A",
        "work_s": 1.0,
        "arrival_s": 0.0,
        "tier": "batch",
        "tenant": "t1",
    }
    validate(doc, pools)
    assert not list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    with pytest.raises(InvalidMessage, match="tier: unknown 'gold'; expected one of batch"):
        validate({**doc, "tier": "gold"}, pools)
    with pytest.raises(InvalidMessage, match="tenant: expected a name"):
        validate({**doc, "tenant": 7}, pools)
    assert list(jsonschema.Draft202012Validator(SCHEMA).iter_errors({**doc, "tenant": 7}))


# ---------------------------------------------------------------------- spot


async def beat(fleet: Fleet, agent: str, spot: bool, status: str = "idle") -> None:
    fleet.zone[agent] = "A"
    document = {
        "agent": agent,
        "zone": "A",
        "category": "CodeGen",
        "status": status,
        "in_flight": 0,
        "slots": 1,
        "speed": 1.0,
        "wall": fleet.wall.t,
        "incarnation": "first",
        "team": "",
        "spot": spot,
    }
    await fleet.broker.kv_put(AGENTS_BUCKET, agent, encode(document))


async def notice(fleet: Fleet, agent: str, deadline: float) -> None:
    document = encode({"notices": {agent: deadline}})
    await fleet.broker.kv_put(LEASE_BUCKET, SPOT_NOTICES_KEY, document)


def test_a_reclaim_drains_the_agent_and_requeues_its_work_off_the_retry_budget() -> None:
    """Retry budget 0: a dead agent's task would fail for good; a reclaimed one's runs again."""

    async def body(fleet: Fleet) -> None:
        await beat(fleet, "a1", spot=True)
        await beat(fleet, "a2", spot=False)
        c = coordinator(fleet, spotted("retry.budget=0"))
        await c.take_over()
        assert c.agents["a1"].spot and not c.agents["a2"].spot
        await fleet.submit(0)
        await c.pump()
        assert await fleet.take("a1") == [(0, 1)]
        await fleet.result("start", 0, "a1")
        await c.pump()
        await notice(fleet, "a1", 120.0)
        await c.check_spot()
        [draining] = await fleet.events("agent_draining")
        assert (draining["subject"], draining["reason"]) == ("a1", "spot_reclaim")
        assert (control_subject("a1"), b"drain") in fleet.broker.notified
        # A replacement is started (health.replace_failed), on spot: its pool is at 1 of 3.
        [replacement] = c.provisioner.started  # type: ignore[attr-defined]
        assert (replacement.zone, replacement.category, replacement.spot) == ("A", "CodeGen", True)
        [requested] = await fleet.events("agent_requested")
        assert requested["reason"] == "replace reclaimed a1"
        await fleet.submit(1, 2)
        await c.pump()
        assert await fleet.take("a2") == [(1, 1)]  # the drained agent takes no new work
        assert await fleet.take("a1") == []
        fleet.wall.t = EPOCH + 119.0
        await c.check_spot()
        assert await fleet.events("agent_reclaimed") == []  # its notice has not run out
        fleet.wall.t = EPOCH + 120.0
        await c.check_spot()
        [reclaimed] = await fleet.events("agent_reclaimed")
        assert (reclaimed["subject"], reclaimed["redistributed"]) == ("a1", 1)
        for kind in ("start", "end"):
            await fleet.result(kind, 1, "a2")
        await c.pump()
        # Queued behind task 2, task 0 is placed again as its next attempt; none failed.
        assert await fleet.take("a2") == [(2, 1)]
        for kind in ("start", "end"):
            await fleet.result(kind, 2, "a2")
        await c.pump()
        assert await fleet.take("a2") == [(0, 2)]
        assert c.counters.failed == 0 and not c.tasks[0].done
        # Its heartbeats, until the provider stops it, never bring it back into the pool.
        fleet.wall.t += 10.0
        await beat(fleet, "a1", spot=True)
        await c.check_health()
        assert await fleet.events("agent_restarted") == [] and not c.agents["a1"].healthy

    run(body)


def test_an_agent_that_drains_before_its_notice_ends_just_leaves() -> None:
    async def body(fleet: Fleet) -> None:
        await beat(fleet, "a1", spot=True)
        await beat(fleet, "a2", spot=False)
        c = coordinator(fleet, spotted("health.replace_failed=false"))
        await c.take_over()
        await notice(fleet, "a1", 120.0)
        await c.check_spot()
        fleet.wall.t += 10.0
        await beat(fleet, "a1", spot=True, status="offline")
        await beat(fleet, "a2", spot=False)
        await c.check_health()
        [left] = await fleet.events("agent_left")
        assert left["subject"] == "a1"
        fleet.wall.t = EPOCH + 200.0
        await c.check_spot()
        assert await fleet.events("agent_reclaimed") == []
        assert "a1" in c.books.reclaimed and not c.books.reclaiming
        assert c.provisioner.started == []  # type: ignore[attr-defined]

    run(body)


def test_agents_the_autoscaler_starts_keep_their_pools_spot_share() -> None:
    async def body(fleet: Fleet) -> None:
        await beat(fleet, "a1", spot=True)
        await beat(fleet, "a2", spot=False)
        c = coordinator(fleet, spotted())
        await c.take_over()
        assert c.spot is not None
        assert c.spot.spawns_on_spot("A", "CodeGen")  # 3 agents at 50 %: 2 on spot
        await beat(fleet, "a3", spot=True)
        await c.check_health()
        assert not c.spot.spawns_on_spot("A", "CodeGen")  # 4 agents: 2 on spot already
        await c.sample(60.0)
        rows = [r for r in fleet.broker.waiting(METRICS) if r["level"] == "purchase"]
        assert {r["id"]: r["total_agents"] for r in rows} == {"spot": 2, "on_demand": 1}

    run(body)


def test_the_live_fleet_runs_on_spot_where_the_simulator_puts_it() -> None:
    scenario = spotted().model_copy(update={"duration": 60.0})
    scenario = scenario.model_copy(
        update={"purchase": Purchase(spot=Spot(share=0.3, by_zone={"B": 0.6}))}
    )
    result = Simulation(scenario, 0).run()
    agents = result.agents[result.agents["role"] == "specialist"]
    simulated = set(agents.loc[agents["spot"].eq(True), "agent"])
    world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
    live = initial_spot(
        scenario.purchase.spot, ((s.agent_id, s.zone, s.category) for s in world.specialists)
    )
    assert live == simulated and 0 < len(live) < len(agents)


def test_a_reclaim_takes_the_running_spot_agents_it_names_and_none_twice() -> None:
    specs = {
        f"{z}-{n}": AgentSpec(f"{z}-{n}", z, "CodeGen", spot=n % 2 == 0)
        for z in ("A", "B")
        for n in range(6)
    }
    running = list(specs)
    zone_a = reclaim_victims(SpotReclaim(zone="A"), running, specs, [])
    assert zone_a == ["A-0", "A-2", "A-4"]
    assert reclaim_victims(SpotReclaim(zone="A"), running, specs, ["A-0"]) == ["A-2", "A-4"]
    half = reclaim_victims(SpotReclaim(fraction=0.5), running, specs, [])
    assert half == ["A-0", "A-2", "A-4"]  # 3 of the 6 spot agents, the first by id
    named = reclaim_victims(SpotReclaim(agents=["B-2", "B-3"]), running, specs, [])
    assert named == ["B-2"]  # B-3 is on demand


def test_the_starting_fleets_random_reclaims_are_the_simulators() -> None:
    """Both draw one exponential time per spot agent, in join order, from ``spot.reclaims``."""
    spot = Spot(share=0.5, reclaim_rate=3.0)  # a reclaim per 20 min per spot agent
    scenario = spotted().model_copy(update={"purchase": Purchase(spot=spot), "duration": 600.0})
    scenario = scenario.model_copy(
        update={"health": scenario.health.model_copy(update={"replace_failed": False})}
    )
    result = Simulation(scenario, 0).run()
    chaos = result.events[(result.events["kind"] == "chaos")]
    simulated = sorted(
        (json.loads(d)["event"]["spot_reclaim"]["agents"][0], round(float(t), 6))
        for t, d in zip(chaos["time_s"], chaos["detail"], strict=True)
    )
    world = build_world(scenario, Streams(scenario.seed, 0).get("world"))
    fleet = [(s.agent_id, s.zone, s.category) for s in world.specialists]
    on_spot = initial_spot(spot, fleet)
    order = [agent_id for agent_id, _, _ in fleet if agent_id in on_spot]
    live = sorted(
        (e.spot_reclaim.agents[0], round(e.at, 6))
        for e in initial_reclaims(scenario, order)
        if e.spot_reclaim is not None and e.spot_reclaim.agents
    )
    assert len(live) >= 3 and live == simulated


def test_spot_agents_started_later_draw_the_next_reclaim_times() -> None:
    """A spot agent started after the starting fleet is drawn for, as the simulator's market draws.

    The market draws one time per spot join, in join order, from one stream:
    the starting fleet's first, then each later spot join's. The live provider
    (``ChaosTimeline``) draws the starting fleet's up front and watches the
    provisioner for spot agents started later (a replacement, an autoscaler's
    start): the first one seen draws the stream's next time, from when it was
    seen; an on-demand start draws nothing.
    """
    spot = Spot(share=0.5, reclaim_rate=3.0)
    scenario = spotted().model_copy(update={"purchase": Purchase(spot=spot), "duration": 3600.0})
    expected = Streams(scenario.seed, 0).get("spot.reclaims").exponential(1200.0, 2).tolist()

    class Started:
        def __init__(self) -> None:
            self.specs = {"A-0": AgentSpec("A-0", "A", "CodeGen", spot=True)}

    started = Started()
    timeline = ChaosTimeline(scenario, started, None, None, None, [], [])  # type: ignore[arg-type]
    [first] = initial_reclaims(scenario, ["A-0"], timeline.reclaim_draws)
    assert first.at == expected[0]
    scheduled: list[ChaosEvent] = []

    async def record(js: Any, clock: Clock, event: ChaosEvent) -> None:
        scheduled.append(event)

    timeline._reclaim_at = record  # type: ignore[method-assign]  # act: record, not reclaim
    timeline._seen_specs = 1

    async def body() -> tuple[float, float]:
        clock = Clock(time.time(), 1000.0)  # a scenario second is a wall millisecond
        watch = asyncio.create_task(timeline._watch_spot_starts(None, clock))
        await asyncio.sleep(0.02)
        added = clock.now()
        started.specs["B-r1"] = AgentSpec("B-r1", "B", "CodeGen", spot=False)
        started.specs["B-r2"] = AgentSpec("B-r2", "B", "CodeGen", spot=True)
        await asyncio.sleep(0.05)
        watch.cancel()
        return added, clock.now()

    added, until = asyncio.run(body())
    [later] = scheduled
    assert later.spot_reclaim is not None and later.spot_reclaim.agents == ["B-r2"]
    seen = later.at - expected[1]  # drawn the stream's second time, from when it was seen
    assert added <= seen <= until


def test_a_tenants_granted_calls_spend_its_budget_and_shed_its_lowest_tier_first() -> None:
    """The gate charges each granted call to its task's tenant, as the simulator's calls do."""
    scenario = load_scenario(Path(__file__).parent / "llm_small.yaml", [])
    tiers = Tiers(tenants={"t1": {"share": 1, "tokens_per_min": 10_000}, "t2": {"share": 1}})
    scenario = scenario.model_copy(update={"tiers": tiers})
    gate = LlmGate(scenario.llm)  # type: ignore[arg-type]
    admission = LiveAdmission(scenario, tiers, gate)
    gate.on_grant = admission.charge

    def task(n: int, tier: str, tenant: str) -> dict[str, Any]:
        return {
            "task_id": n,
            "category": "CodeGen",
            "zone": "A",
            "arrival_s": 0.0,
            "tier": tier,
            "tenant": tenant,
        }

    admission.admitted(1, admission.decide(task(1, "batch", "t1"), 0, 0.0))
    call = {"model": "m", "input_tokens": 10_500, "output_tokens": 500, "agent": "a1"}
    assert gate.acquire({**call, "task_id": 1}, 1.0)["granted"]
    # 11,000 tokens against a 10,000 budget: 0.1 budgets over (less a second's refill).
    assert admission.budgets.overdraft("t1", 1.0) > 0.05
    verdicts = {t: admission.decide(task(2, t, "t1"), 0, 1.0) for t in TIERS}
    assert (verdicts["batch"].admit, verdicts["batch"].reason) == (False, "tenant_budget")
    assert verdicts["standard"].admit and verdicts["critical"].admit
    assert admission.decide(task(3, "batch", "t2"), 0, 1.0).admit  # another tenant: not shed
    assert gate.acquire({**call, "task_id": 99}, 2.0)["granted"]  # no known task: nobody pays
    assert admission.budgets.overdraft("t2", 2.0) == 0.0


def test_a_spot_agent_process_is_started_saying_so() -> None:
    provisioner = LocalProcessProvisioner("nats://127.0.0.1:1", None, 1.0)
    spot = provisioner.command(AgentSpec("A-CodeGen-001", "A", "CodeGen", spot=True))
    on_demand = provisioner.command(AgentSpec("A-CodeGen-002", "A", "CodeGen"))
    assert "--spot" in spot and "--spot" not in on_demand
    parser = argparse.ArgumentParser()
    add_agent_arguments(parser)
    assert parser.parse_args(spot[spot.index("--zone") :]).spot
    assert not parser.parse_args(on_demand[on_demand.index("--zone") :]).spot


def test_a_compaction_forgets_a_shed_task_as_ended_and_counts_it() -> None:
    """A shed task never ends on a results stream: its verdict is its end for the snapshot."""
    submits = [
        {
            "kind": "task",
            "task_id": n,
            "category": "CodeGen",
            "zone": "A",
            "arrival_s": 0.0,
            "work_s": 1.0,
            "tier": "batch",
            "tenant": "t1",
        }
        for n in (1, 2)
    ]
    shed = {
        "kind": "admission",
        "task_id": 1,
        "category": "CodeGen",
        "zone": "A",
        "arrival_s": 0.0,
        "tier": "batch",
        "tenant": "t1",
        "admission": "shed",
        "reason": "queue",
    }
    admitted = {**shed, "task_id": 2, "admission": "admitted", "reason": ""}
    pools = Pools(frozenset({"A"}), frozenset({"CodeGen"}))
    stream = dispatch_stream("A")
    fresh = {"ORCH_SUBMIT": submits, stream: [shed, admitted]}
    snapshot = fold(Snapshot(), fresh, {"ORCH_SUBMIT": 2, stream: 2}, 100.0, 3600.0, pools)
    assert snapshot.done == {1: ("shed", 100.0)}
    assert (snapshot.base["submitted"], snapshot.base["shed"]) == (1, 1)
    assert snapshot.kept[stream] == [admitted]  # task 2 is open work
    assert [d["task_id"] for d in snapshot.kept["ORCH_SUBMIT"]] == [2]


def test_a_takeover_drains_a_noticed_agent_again_without_a_second_notice_or_replacement() -> None:
    async def body(fleet: Fleet) -> None:
        await beat(fleet, "a1", spot=True)
        await beat(fleet, "a2", spot=False)
        first = coordinator(fleet, spotted())
        await first.take_over()
        await notice(fleet, "a1", 120.0)
        await first.check_spot()
        second = coordinator(fleet, spotted(), "c2")
        await second.take_over()
        await second.check_spot()
        assert len(await fleet.events("agent_draining")) == 1
        assert len(await fleet.events("agent_requested")) == 1
        assert second.provisioner.started == []  # type: ignore[attr-defined]
        assert second.agents["a1"].draining and "a1" in second.books.reclaiming
        await fleet.submit(0)
        await second.pump()
        assert await fleet.take("a2") == [(0, 1)] and await fleet.take("a1") == []

    run(body)


def test_a_notice_for_an_agent_not_yet_joined_is_acted_on_when_it_joins() -> None:
    async def body(fleet: Fleet) -> None:
        await beat(fleet, "a2", spot=False)
        c = coordinator(fleet, spotted("health.replace_failed=false"))
        await c.take_over()
        await notice(fleet, "a1", 120.0)
        await c.check_spot()
        assert await fleet.events("agent_draining") == []
        await beat(fleet, "a1", spot=True)
        await c.check_health()
        await c.check_spot()
        [draining] = await fleet.events("agent_draining")
        assert draining["subject"] == "a1" and c.agents["a1"].draining

    run(body)
