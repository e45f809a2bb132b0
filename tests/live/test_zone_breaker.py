"""The zone circuit breaker, live: the chief's failed calls to a dark zone open it, as in the sim.

On the in-memory broker (``test_coordinator_logic``'s fleet and clock): zone
A is announced dark; tasks whose home is A are the chief's calls to it. The
live coordinator must open, probe and reopen A's breaker on exactly the
transitions the simulator's zone gate makes for the same calls, and declare
the zone dead when the simulator's failover declares it for an outage at the
same second.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from conftest import small
from test_coordinator_logic import EPOCH, INTERVAL, Fleet, rounds, run
from test_live_escalation import fail

from sim.live.broker import encode
from sim.live.coordinator import Coordinator
from sim.live.transport import LEASE_BUCKET, ZONES_DOWN_KEY
from sim.policies.dispatch import DispatchCore
from sim.runner import run as run_simulator
from sim.scenario.schema import Scenario
from sim.world.policy_set import build_policies, dispatch_core
from sim.world.streams import Streams

OUTAGE_S = 5.0
CALLS_S = (6.0, 7.0, 8.0)  # three calls to dark A: the third opens the breaker
OPEN_S = 10.0  # circuit_breaker.open: the probe falls due at 18 s
PROBE_S = CALLS_S[-1] + OPEN_S
OVERRIDES = (f"policies.circuit_breaker.open={OPEN_S}s",)


def simulators_gate(scenario: Scenario) -> DispatchCore[Any]:
    """The dispatch core the simulator's chief consults, from the shared factory."""
    policies = build_policies(
        scenario, Streams(scenario.seed, 0), {"A": "us-east-1", "B": "us-west-2"}
    )
    return dispatch_core(policies)


def transitions(core: DispatchCore[Any]) -> list[tuple[str, str, float]]:
    assert core.zones.breakers is not None
    return [
        (target, t.to_state.value, t.time) for target, t in core.zones.breakers.drain_transitions()
    ]


def simulators_declaration_s(scenario: Scenario) -> float:
    """When the simulator's failover declares zone A dead after an outage at OUTAGE_S."""
    chaos = f"chaos=[{{at: {OUTAGE_S}s, zone_outage: A, duration: 10m}}]"
    sim = small("duration=2m", chaos, *OVERRIDES)
    assert sim.health == scenario.health and sim.seed == scenario.seed
    events = run_simulator(sim).results[0].events
    [declared] = events.loc[events["kind"] == "zone_redistributed", "time_s"]
    return float(declared)


async def a1_and_b1(fleet: Fleet) -> Coordinator:
    """Agent a1 in A, b1 in B, and a primary that has taken over."""
    await fleet.beat("a1", "A")
    await fleet.beat("b1", "B")
    c = fleet.coordinator(*OVERRIDES)
    await c.take_over()
    return c


async def zone_a_dark(fleet: Fleet) -> Coordinator:
    """Agent a1 in A, b1 in B, and a primary that has seen A announced dark at OUTAGE_S."""
    c = await a1_and_b1(fleet)
    fleet.wall.t = EPOCH + OUTAGE_S
    await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": ["A"]}))
    await c.check_zones()
    return c


def test_the_live_zone_breaker_opens_where_the_simulators_would() -> None:
    async def body(fleet: Fleet) -> None:
        c = await a1_and_b1(fleet)
        declared_s = simulators_declaration_s(c.scenario)
        assert declared_s > PROBE_S  # the breaker acts before the checks (and is probed)

        # The simulator's gate, fed the same calls.
        sim = simulators_gate(c.scenario)
        sim.mark_dark("A", True)
        verdicts = [sim.zones.reach("A", t) for t in CALLS_S]
        assert [v is not None and v.opened for v in verdicts] == [False, False, True]
        assert sim.zones.probe("A", PROBE_S)
        assert sim.zones.reach("A", PROBE_S) is not None  # the probe's call fails: open again
        expected = transitions(sim)
        assert [state for _, state, _ in expected] == ["open", "half_open", "open"]

        fleet.wall.t = EPOCH + OUTAGE_S
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": ["A"]}))
        await c.check_zones()
        assert "A" in c.dispatcher.zones.dark and c.dispatcher.zones.takes_work("A")
        for task_id, t in enumerate(CALLS_S):
            fleet.wall.t = EPOCH + t
            await fleet.submit(task_id, zone="A")
            await c.pump()
            if task_id < 2:  # nobody answers and the breaker is closed: at A's door
                assert [x.task_id for x in c.intake.calls.doors["A"]] == list(range(task_id + 1))
        # The third call opened it: the door's tasks and the third went to B.
        assert not c.dispatcher.zones.takes_work("A") and "A" not in c.intake.calls.doors
        assert [c.tasks[n].zone for n in range(3)] == ["B", "B", "B"]
        assert await fleet.take("b1") == [(0, 1)] and c.dispatcher.queued() == 2

        fleet.wall.t = EPOCH + PROBE_S
        await c.check_zones()  # the probe falls due: half-open, A takes a call again
        assert c.dispatcher.zones.takes_work("A")
        await fleet.submit(3, zone="A")
        await c.pump()  # ...which fails: open again, and the task goes to B
        assert c.tasks[3].zone == "B" and not c.dispatcher.zones.takes_work("A")
        live = [(e["subject"], e["state"], e["time_s"]) for e in await fleet.events("breaker")]
        assert live == expected
        assert await fleet.events("zone_down") == []  # the checks have not declared it yet

        fleet.wall.t = EPOCH + declared_s - 0.5
        await c.check_zones()
        assert await fleet.events("zone_down") == []
        tick = 0.01  # live checks the zones every tenth of a wall second or less
        fleet.wall.t = EPOCH + declared_s + tick
        await c.check_zones()
        [down] = await fleet.events("zone_down")
        assert down["subject"] == "A" and declared_s <= down["time_s"] <= declared_s + tick

        fleet.wall.t += 60.0
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": []}))
        await c.check_zones()
        [up] = await fleet.events("zone_restored")
        assert up["subject"] == "A" and "A" not in c.dispatcher.zones.dark

    run(body)


def test_a_zone_back_before_its_declaration_places_what_waited_at_its_door() -> None:
    async def body(fleet: Fleet) -> None:
        c = await zone_a_dark(fleet)
        fleet.wall.t = EPOCH + CALLS_S[0]
        await fleet.submit(0, zone="A")
        await c.pump()
        assert await fleet.take("a1") == [] and await fleet.take("b1") == []  # at A's door
        fleet.wall.t = EPOCH + CALLS_S[1]
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": []}))
        await c.check_zones()
        assert await fleet.take("a1") == [(0, 1)]  # delivered to A once it answers
        assert await fleet.events("zone_down") == []  # never declared...
        [restored] = await fleet.events("zone_restored")  # ...but its region is back
        assert restored["subject"] == "A"

    run(body)


def test_an_escalation_to_the_chief_calls_its_zone_through_the_gate() -> None:
    """The chief's own pick is a call like any other: it closes a half-open breaker.

    A's breaker opens on three calls while A is dark and is half-open when A is
    back; a task that failed in B and escalates to the chief goes to A. The
    simulator's chief sends it through the zone gate (``Chief.send``), whose
    answered call closes the breaker; live must log the same transitions.
    """
    escalate = (
        "escalation.team_retries=0",
        "escalation.zone_moves=[]",
        "escalation.chief_retries=1",
    )

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        for agent in ("b1", "b2", "b3"):
            await fleet.beat(agent, "B")
        c = fleet.coordinator(*OVERRIDES, *escalate)
        await c.take_over()
        sim = simulators_gate(c.scenario)  # the simulator's gate, fed the same calls
        sim.mark_dark("A", True)
        fleet.wall.t = EPOCH + OUTAGE_S
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": ["A"]}))
        await c.check_zones()
        for task_id, t in enumerate(CALLS_S):
            fleet.wall.t = EPOCH + t
            assert sim.zones.reach("A", t) is not None
            await fleet.submit(task_id, zone="A")
            await c.pump()
        taken = {agent: await fleet.take(agent) for agent in ("b1", "b2", "b3")}
        assert sorted(t for tasks in taken.values() for t in tasks) == [(0, 1), (1, 1), (2, 1)]
        holder = next(agent for agent, tasks in taken.items() if (0, 1) in tasks)

        fleet.wall.t = EPOCH + PROBE_S + 1.0
        assert sim.zones.probe("A", PROBE_S)
        sim.mark_dark("A", False)
        await c.check_zones()  # the probe is due: half-open
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": []}))
        await c.check_zones()  # A answers again; its breaker waits for a call
        await fail(fleet, 0, holder, 1)
        await c.pump()
        assert await fleet.take("a1") == [(0, 2)]  # the chief chose A, and A answered
        assert sim.zones.reach("A", fleet.wall.t - EPOCH) is None
        expected = [
            (target, t.to_state.value) for target, t in sim.zones.breakers.drain_transitions()
        ]
        assert [state for _, state in expected] == ["open", "half_open", "closed"]
        live = [(e["subject"], e["state"]) for e in await fleet.events("breaker")]
        assert live == expected

    run(body)


def test_a_declared_zones_agents_are_declared_with_it_and_replaced_in_the_nearest_live_zone() -> (
    None
):
    """As the simulator's failover after an outage: every agent the zone took is declared dead
    (``agent_detected``) and replaced from the reserve pool — in B, A being dark. Live used to
    drop them silently: a zone outage of the spec's fleet left it 43 agents short of its
    replay (agents mean 193.5 live, 218.7 simulated)."""

    async def body(fleet: Fleet) -> None:
        c = await zone_a_dark(fleet)
        assert await fleet.events("agent_detected") == []  # dark, not declared yet
        fleet.wall.t = EPOCH + OUTAGE_S + 120.0  # well past the checks' declaration
        await c.check_zones()
        [down] = await fleet.events("zone_down")
        [detected] = await fleet.events("agent_detected")
        assert down["subject"] == "A"
        assert detected["subject"] == "a1" and detected["reason"] == "zone A declared down"
        [spec] = c.provisioner.started
        assert (spec.zone, spec.category) == ("B", "CodeGen")
        [replaced] = await fleet.events("agent_replaced")
        assert replaced["subject"] == "a1" and replaced["replacement"] == spec.agent_id
        assert c.agents["b1"].healthy and not c.agents["a1"].healthy

    run(body)


def suspend_on_every_call(broker: Any) -> None:
    """Every call of the memory broker yields to the event loop first, as a real one's does."""
    for name in dir(broker):
        method = getattr(broker, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            continue

        async def suspending(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            return await _method(*args, **kwargs)

        setattr(broker, name, suspending)


def test_an_agent_the_checks_and_its_zone_both_declare_is_declared_and_replaced_once() -> None:
    """A health round and the zone's declaration run side by side, each awaiting the broker:
    the zone had listed its agents before the round declared some of them, and at the
    spec's fleet 27 of zone B's 43 agents were declared twice, 12 of them replaced twice
    (55 replacements for 43 agents; the reserve pool ran dry before the rest)."""
    beating = ("b1", "b2", "b3", "b4", "b5")  # most of the fleet is fresh: the rounds judge
    zone_a = ("a1", "a2", "a3", "a4")

    async def body(fleet: Fleet) -> None:
        for agent in zone_a:
            await fleet.beat(agent, "A")
        for agent in beating:
            await fleet.beat(agent, "B")
        c = fleet.coordinator(*OVERRIDES)
        await c.take_over()
        suspend_on_every_call(fleet.broker)
        fleet.wall.t = EPOCH + OUTAGE_S
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode({"zones": ["A"]}))
        await c.check_zones()
        await rounds(fleet, c, 2, beating=beating)  # a1 and a2 miss two checks
        assert await fleet.events("agent_detected") == []
        fleet.wall.t += INTERVAL  # the third check, and the zone's declaration, are due
        for agent in beating:
            await fleet.beat(agent, "B")
        await asyncio.gather(c.check_health(), c.check_zones())
        detected = [e["subject"] for e in await fleet.events("agent_detected")]
        assert sorted(detected) == list(zone_a)
        replaced = [e["subject"] for e in await fleet.events("agent_replaced")]
        assert sorted(replaced) == list(zone_a) and len(c.provisioner.started) == len(zone_a)

    run(body)


def test_a_zone_read_dark_late_is_declared_when_the_simulators_checks_would_declare_it() -> None:
    """The coordinator learns of a dark zone from the lease key, up to a poll after it went
    dark; a check of its coordinator in between failed all the same (the zone was dark), so
    the declaration is counted from when it went dark, as the simulator counts it. From the
    read, it came one health interval late (10 s at the spec's fleet, x10)."""

    async def body(fleet: Fleet) -> None:
        c = await a1_and_b1(fleet)
        declared_s = simulators_declaration_s(c.scenario)
        health = c.scenario.health
        first_check_s = declared_s - health.timeout - (health.threshold - 1) * health.interval
        assert first_check_s >= OUTAGE_S  # the first failed check...
        fleet.wall.t = EPOCH + first_check_s + 0.5  # ...came before the coordinator's read
        down = {"zones": ["A"], "since": {"A": OUTAGE_S}}
        await fleet.broker.kv_put(LEASE_BUCKET, ZONES_DOWN_KEY, encode(down))
        await c.check_zones()
        fleet.wall.t = EPOCH + declared_s - 0.5
        await c.check_zones()
        assert await fleet.events("zone_down") == []
        fleet.wall.t = EPOCH + declared_s + 0.01
        await c.check_zones()
        [declared] = await fleet.events("zone_down")
        assert declared_s <= declared["time_s"] <= declared_s + 0.01

    run(body)
