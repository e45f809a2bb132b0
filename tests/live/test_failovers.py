"""A zone coordinator's or a team lead's crash, live, on the in-memory broker: the
simulator's failover, event for event.

A zone coordinator: the zone's agents live on. The chief's calls to the zone fail, so its work
waits at the zone's door, until the checks declare the coordinator dead and,
``health.zone_promotion`` later, its standby is promoted (the door's work goes
in); a zone with no standby is declared down and evacuated until its
coordinator restarts. Live had crashed its primary chief instead.

A team lead: its team's agents take no new work (neither routed nor pulled)
until the checks declare the lead dead and, ``health.zone_promotion`` later,
a member takes over. Live had skipped it.
"""

from __future__ import annotations

import json

from test_coordinator_logic import EPOCH, Fleet, run

from sim.live.broker import encode
from sim.live.coordinator import Coordinator
from sim.live.transport import (
    LEASE_BUCKET,
    TEAM_LEADS_DOWN_KEY,
    ZONE_COORDINATORS_DOWN_KEY,
    ZONES_CUT_OFF_KEY,
    ZONES_DOWN_KEY,
)

ZONES = [
    {"name": "A", "region": "us-east-1", "team_leads": 1, "standby": True},
    {"name": "B", "region": "us-west-2", "team_leads": 1, "standby": False},
]
SETTINGS = (f"topology.zones={json.dumps(ZONES)}", "policies.circuit_breaker.enabled=false")


async def announce(
    fleet: Fleet, since: dict[str, float], key: str = ZONE_COORDINATORS_DOWN_KEY
) -> None:
    """What chaos writes when zone coordinators (or team leads) crash (empty: all back)."""
    document = {"zones": sorted(since), "since": since}
    await fleet.broker.kv_put(LEASE_BUCKET, key, encode(document))


async def until_event(fleet: Fleet, c: Coordinator, kind: str, limit_s: float) -> dict[str, object]:
    """Step the wall clock a second at a time (agents beating) until *kind* is logged."""
    for _ in range(int(limit_s)):
        fleet.wall.t += 1.0
        for agent in sorted(fleet.zone):  # every agent beats: none is in doubt
            await fleet.beat(agent, fleet.zone[agent])
        await c.check_health()
        await c.check_zones()
        found = await fleet.events(kind)
        if found:
            return found[-1]
    raise AssertionError(f"no {kind} within {limit_s} s")


def detection_bounds(c: Coordinator, since: float) -> tuple[float, float]:
    """The spec's checks of a coordinator: its third missed check, whatever the phase."""
    health = c.scenario.health
    earliest = since + (health.threshold - 1) * health.interval + health.timeout
    return earliest, since + health.threshold * health.interval + health.timeout + 1.0


async def crashed_with_work(fleet: Fleet, zone: str) -> Coordinator:
    """a1 in A and b1 in B; *zone*'s coordinator crashes at second 5, then task 0 arrives
    in *zone* (the chief's call to it fails: the task waits at its door)."""
    await fleet.beat("a1", "A")
    await fleet.beat("b1", "B")
    c = fleet.coordinator(*SETTINGS)
    await c.take_over()
    fleet.wall.t = EPOCH + 5.0
    await announce(fleet, {zone: 5.0})
    await c.check_zones()
    await fleet.submit(0, zone=zone)
    await c.pump()
    return c


def test_a_zone_coordinators_standby_is_promoted_and_the_door_opens() -> None:
    async def body(fleet: Fleet) -> None:
        c = await crashed_with_work(fleet, "A")
        assert await fleet.take("a1") == [] and await fleet.take("b1") == []  # at A's door
        detected = await until_event(fleet, c, "coordinator_detected", 60)
        earliest, latest = detection_bounds(c, 5.0)
        assert detected["subject"] == "A-coord"
        assert earliest <= float(str(detected["time_s"])) <= latest
        assert await fleet.take("a1") == []  # the door stays shut until the promotion
        promoted = await until_event(fleet, c, "standby_promoted", 30)
        promotion = c.scenario.health.zone_promotion
        assert float(str(promoted["time_s"])) >= float(str(detected["time_s"])) + promotion
        assert promoted["subject"] == "A-standby"
        assert await fleet.take("a1") == [(0, 1)]  # what waited at the door goes in
        assert await fleet.events("agent_detected") == []  # the agents were never in doubt
        assert await fleet.events("zone_down") == []

    run(body)


def test_a_zone_without_a_standby_is_evacuated_until_its_coordinator_restarts() -> None:
    async def body(fleet: Fleet) -> None:
        c = await crashed_with_work(fleet, "B")
        assert await fleet.take("b1") == []  # at B's door
        await until_event(fleet, c, "zone_redistributed", 60)
        assert await fleet.take("a1") == [(0, 1)]  # evacuated to A
        await fleet.submit(1, zone="B")
        await c.pump()
        assert await fleet.take("b1") == []  # B is routed around while it is down
        await announce(fleet, {})  # the coordinator restarts
        restarted = await until_event(fleet, c, "coordinator_restart", 5)
        assert restarted["subject"] == "B-coord"
        await fleet.submit(2, zone="B")
        await c.pump()
        assert await fleet.take("b1") == [(2, 1)]  # B takes its work again
        assert await fleet.events("agent_detected") == []

    run(body)


def test_a_team_without_its_lead_takes_no_work_until_a_member_takes_over() -> None:
    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A", team="A-T01")
        await fleet.beat("a2", "A")  # in no team: the lead's crash does not touch it
        await fleet.beat("b1", "B")
        c = fleet.coordinator(*SETTINGS, "policies.spill_across_zones=false")  # A's work stays
        await c.take_over()
        fleet.wall.t = EPOCH + 5.0
        await announce(fleet, {"A-T01-lead": 5.0}, TEAM_LEADS_DOWN_KEY)
        await c.check_zones()
        await fleet.submit(0, 1, zone="A")
        await c.pump()
        assert await fleet.take("a1") == []  # headless: nothing routed to it...
        assert await fleet.take("a2") == [(0, 1)]
        for kind in ("start", "end"):
            await fleet.result(kind, 0, "a2")
        await c.pump()
        assert await fleet.take("a2") == [(1, 1)]  # ...the free member of no team pulls
        await fleet.submit(2, zone="A")
        await c.pump()
        detected = await until_event(fleet, c, "team_lead_detected", 60)
        earliest, latest = detection_bounds(c, 5.0)
        assert detected["subject"] == "A-T01-lead"
        assert earliest <= float(str(detected["time_s"])) <= latest
        assert await fleet.take("a1") == []  # task 2 waits: a1 still takes nothing
        replaced = await until_event(fleet, c, "team_lead_replaced", 30)
        promotion = c.scenario.health.zone_promotion
        assert float(str(replaced["time_s"])) >= float(str(detected["time_s"])) + promotion
        assert await fleet.take("a1") == [(2, 1)]  # its free slot pulls the queued task
        assert await fleet.events("agent_detected") == []

    run(body)


async def cut_off_b(fleet: Fleet) -> Coordinator:
    """a1 in A and b1 in B; a partition cuts B off at second 5 (the coordinator has read it)."""
    await fleet.beat("a1", "A")
    await fleet.beat("b1", "B")
    c = fleet.coordinator(*SETTINGS)
    await c.take_over()
    fleet.wall.t = EPOCH + 5.0
    await announce(fleet, {"B": 5.0}, ZONES_CUT_OFF_KEY)
    await c.check_zones()
    return c


def test_a_zone_cut_off_by_a_partition_is_routed_around_and_comes_back_whole() -> None:
    """As the simulator's ``zone_cut_off``: the chief's calls to the zone fail (its work
    waits at the door), the checks declare its coordinator after their detection time and
    the door's work goes elsewhere (``zone_redistributed``), its agents are never declared
    (alive, only out of reach); when the partition heals the zone takes work again."""

    async def body(fleet: Fleet) -> None:
        c = await cut_off_b(fleet)
        [cut] = await fleet.events("zone_cut_off")
        assert cut["subject"] == "B"
        await fleet.submit(0, zone="B")
        await c.pump()
        assert await fleet.take("b1") == [] and await fleet.take("a1") == []  # at B's door
        redistributed = await until_event(fleet, c, "zone_redistributed", 60)
        earliest, latest = detection_bounds(c, 5.0)
        assert redistributed["subject"] == "B" and redistributed["tasks"] == 1
        assert earliest <= float(str(redistributed["time_s"])) <= latest
        assert await fleet.take("a1") == [(0, 1)]  # the door's work went to A
        await fleet.submit(1, zone="B")
        await c.pump()
        assert await fleet.take("b1") == []  # routed around while cut off
        await announce(fleet, {}, ZONES_CUT_OFF_KEY)  # the partition heals
        reconnected = await until_event(fleet, c, "zone_reconnected", 5)
        assert reconnected["subject"] == "B"
        await fleet.submit(2, zone="B")
        await c.pump()
        assert await fleet.take("b1") == [(2, 1)]  # B takes its work again
        assert await fleet.events("agent_detected") == []  # never in doubt
        assert await fleet.events("zone_down") == []

    run(body)


def test_a_takeover_knows_the_zones_out_of_reach_before_it_places_the_backlog() -> None:
    """A zone cut off before the takeover: the new primary reads the announcement with
    the pools, so the backlog bound for it waits at its door (the breaker off here)
    instead of being handed to its agents and the zone found dark a poll later."""

    async def body(fleet: Fleet) -> None:
        await fleet.beat("a1", "A")
        await fleet.beat("b1", "B")
        fleet.wall.t = EPOCH + 5.0
        await announce(fleet, {"B": 5.0}, ZONES_CUT_OFF_KEY)
        await fleet.submit(0, zone="B")
        c = fleet.coordinator(*SETTINGS)
        await c.take_over()
        assert await fleet.take("b1") == [] and await fleet.take("a1") == []
        [cut] = await fleet.events("zone_cut_off")
        assert cut["subject"] == "B"
        await until_event(fleet, c, "zone_redistributed", 60)
        assert await fleet.take("a1") == [(0, 1)]

    run(body)


def test_a_zone_stays_out_of_reach_until_the_last_of_its_outage_and_cut_ends() -> None:
    """Reasons overlap as in the simulator's failover (``_unreachable``/``_reachable``):
    B is cut off, then dark as well; the outage ends while the cut lasts, and B stays
    declared, its door shut; only the heal gives it back."""

    async def body(fleet: Fleet) -> None:
        c = await cut_off_b(fleet)
        await announce(fleet, {"B": 6.0}, ZONES_DOWN_KEY)
        await until_event(fleet, c, "zone_down", 60)  # declared with the outage's agents
        await announce(fleet, {}, ZONES_DOWN_KEY)  # the region is back, the cut is not
        await c.check_zones()
        gate = c.intake.dispatcher.zones
        [restored] = await fleet.events("zone_restored")  # the region is, as simulated
        assert restored["subject"] == "B"
        assert "B" in gate.declared and "B" in gate.dark  # still out of reach
        await announce(fleet, {}, ZONES_CUT_OFF_KEY)
        reconnected = await until_event(fleet, c, "zone_reconnected", 5)
        assert reconnected["subject"] == "B"
        assert "B" not in gate.declared and "B" not in gate.dark

    run(body)


def test_an_outage_during_a_coordinators_crash_ends_it_with_no_promotion() -> None:
    """As the simulator's (``sim.model.zone_reach``): A's coordinator crashes at 5 s, the
    region goes dark at 7 s, before the checks noticed. One verdict, counted from 5 s,
    declares the zone with its agents; the standby died with the region, so nothing is
    promoted; the region's return answers with a fresh coordinator though chaos still
    announces the crash."""

    async def body(fleet: Fleet) -> None:
        c = await crashed_with_work(fleet, "A")
        fleet.wall.t = EPOCH + 7.0
        await announce(fleet, {"A": 7.0}, ZONES_DOWN_KEY)
        down = await until_event(fleet, c, "zone_down", 60)
        earliest, latest = detection_bounds(c, 5.0)
        assert earliest <= float(str(down["time_s"])) <= latest
        for _ in range(40):  # well past a promotion's due time
            fleet.wall.t += 1.0
            await c.check_zones()
        assert await fleet.events("coordinator_detected") == []
        assert await fleet.events("standby_promoted") == []
        gate = c.intake.dispatcher.zones
        assert "A" in gate.dark and "A" in gate.declared
        await announce(fleet, {}, ZONES_DOWN_KEY)  # the region is back; the crash still said
        await until_event(fleet, c, "zone_restored", 5)
        assert "A" not in gate.dark and "A" not in gate.declared

    run(body)


def test_a_coordinator_back_before_its_checks_noticed_is_never_declared() -> None:
    """B has no standby; its coordinator restarts 3 s after its crash, before the checks'
    verdict: B answers again at once and stays in the routing (the simulator had declared
    it dead at the verdict anyway, and routed around it for the rest of the run)."""

    async def body(fleet: Fleet) -> None:
        c = await crashed_with_work(fleet, "B")
        fleet.wall.t = EPOCH + 8.0
        await announce(fleet, {})
        await until_event(fleet, c, "coordinator_restart", 5)
        assert await fleet.take("b1") == [(0, 1)]  # the door's work goes in
        for _ in range(40):
            fleet.wall.t += 1.0
            await fleet.beat("b1", "B")
            await c.check_zones()
        assert await fleet.events("coordinator_detected") == []
        assert await fleet.events("zone_redistributed") == []
        for kind in ("start", "end"):
            await fleet.result(kind, 0, "b1")
        await fleet.submit(1, zone="B")
        await c.pump()
        assert await fleet.take("b1") == [(1, 1)]  # B was never routed around

    run(body)


def test_a_standby_promoted_while_its_zone_is_cut_off_answers_only_at_the_heal() -> None:
    """A's coordinator crashes at 5 s and a partition cuts A off at 7 s: the standby is
    promoted in its zone, but the chief still cannot reach it; the heal gives A back."""

    async def body(fleet: Fleet) -> None:
        c = await crashed_with_work(fleet, "A")
        fleet.wall.t = EPOCH + 7.0
        await announce(fleet, {"A": 7.0}, ZONES_CUT_OFF_KEY)
        await until_event(fleet, c, "standby_promoted", 90)
        gate = c.intake.dispatcher.zones
        assert "A" in gate.dark  # promoted, and still out of reach
        assert await fleet.take("a1") == []
        await announce(fleet, {}, ZONES_CUT_OFF_KEY)
        await until_event(fleet, c, "zone_reconnected", 5)
        assert "A" not in gate.dark and "A" not in gate.declared
        await fleet.submit(1, zone="A")
        await c.pump()
        assert (1, 1) in await fleet.take("a1")

    run(body)
