"""Health: heartbeats in ``orch_agents`` → pool membership and the scenario's failure detector.

Scenario: every health interval the primary reads the fleet's heartbeats in
one pass (an agent's own key or its fleet's bundle: ``sim.live.beats``). A
new agent joins its pool; one that went offline leaves it; one the detector
declares dead leaves it too and what it held is placed anew.
The detector is the scenario's (``health.detector``): the spec's consecutive
failed checks, or φ accrual on the heartbeats' own times — built by
``sim.world.policy_set.failure_detector``, as the simulator builds it.

The coordinator's own lag must never read as an agent's death:

* a heartbeat's freshness is judged against the wall time the coordinator
  *asked* for it, not the time it got round to judging (on a busy machine
  the two differ by more than a check);
* a round that woke late (by more than the slack between the heartbeat
  period, half an interval, and the freshness limit, three quarters) gives
  no failed verdict: it abstains, and says so to the lag books;
* so does a round in which the fleet's heartbeats are stale *together*
  (the lower median age beyond the limit): that is the machine, not the
  agents, and it counts as lag.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sim.live.announcements import announced
from sim.live.beats import agent_beats
from sim.live.broker import Broker, KvEntry
from sim.live.cancel import stop_if_cancelled
from sim.live.coordinator.intake import Intake
from sim.live.coordinator.state import AgentView, Books, EventLog, ScenarioTime
from sim.live.coordinator.team_failover import TeamLeadFailover
from sim.live.coordinator.unreachable_zones import (
    COORDINATOR,
    CUT_OFF,
    OUTAGE,
    UnreachableZones,
)
from sim.live.lag import LagMonitor
from sim.live.roster import members
from sim.live.transport import (
    AGENTS_BUCKET,
    LEASE_BUCKET,
    TEAM_LEADS_DOWN_KEY,
    ZONE_COORDINATORS_DOWN_KEY,
    ZONES_CUT_OFF_KEY,
    ZONES_DOWN_KEY,
)
from sim.policies.health import (
    ConsecutiveFailureDetector,
    FailureDetector,
    HealthState,
    HealthTransition,
    PhiAccrualDetector,
)
from sim.policies.routing import ZoneRouter
from sim.scenario.schema import Scenario
from sim.world.policy_set import coordinator_detector

#: A heartbeat older than this many intervals when read is a failed check (agents beat
#: twice per interval).
FRESH_INTERVALS = 0.75
#: A round that woke later than this many intervals abstains: the heartbeat period is half
#: an interval, so later than 3/4 - 1/2 a fresh agent's beat may already look stale.
LATE_INTERVALS = FRESH_INTERVALS - 0.5
#: A registry key whose last beat is this many intervals old is a dead agent's, not yet
#: expired: a coordinator that has not seen the agent before does not join it (a takeover
#: would otherwise hand it work, then declare it dead a second time) unless its predecessor
#: still counted it a member (``inherit``): then it died undeclared, and is judged here.
STALE_JOIN_INTERVALS = 3.0
#: After a real broker outage, rounds abstain for this many intervals plus
#: BROKER_RECOVERY_WALL_S: the agents could not beat while it was down, and they get their
#: writes through one by one once JetStream has recovered its stores (their silence was the
#: broker's, not theirs).
BROKER_GAP_INTERVALS = 3.0
BROKER_RECOVERY_WALL_S = 2.0
#: A real outage, not a read that failed once: this many failed registry reads in a row
#: (or a reconnect the connection reported). One failed read only skips its own round; a
#: grace after it would hold every verdict back by the whole grace (140 scenario s at x40).
BROKER_OUTAGE_ROUNDS = 2


class Verdicts:
    """The detector, fed as its kind needs: check results, or heartbeats and φ checks."""

    def __init__(self, detector: FailureDetector) -> None:
        self.detector = detector
        self.phi = isinstance(detector, PhiAccrualDetector)
        self.suspected: set[str] = set()
        self._last_beat: dict[str, float] = {}

    def judge(
        self, agent_id: str, now: float, ok: bool, beat_s: float | None, abstain: bool
    ) -> HealthTransition | None:
        """One round for one agent: *ok* (fresh), its last beat's time, whether to abstain."""
        transition: HealthTransition | None = None
        if self.phi:
            last = self._last_beat.get(agent_id)
            if beat_s is not None and (last is None or beat_s > last):
                self._last_beat[agent_id] = beat_s
                transition = self.detector.observe(agent_id, beat_s, True)
            if not abstain:
                at = max(now, self._last_beat.get(agent_id, now))
                transition = self.detector.observe(agent_id, at, False) or transition
        elif ok or not abstain:
            transition = self.detector.observe(agent_id, now, ok)
        if transition is not None:
            if transition.to_state is HealthState.UNHEALTHY:
                self.suspected.add(agent_id)
            else:
                self.suspected.discard(agent_id)
        return transition


class HealthCheck:
    """Heartbeats, the detector and zone outages (see the module docstring)."""

    def __init__(
        self,
        scenario: Scenario,
        books: Books,
        intake: Intake,
        broker: Broker,
        time_: ScenarioTime,
        event: EventLog,
        detector: FailureDetector,
        router: ZoneRouter,
        lag: LagMonitor,
        stalls: tuple[tuple[float, float, float], ...] = (),
        zone_detector: ConsecutiveFailureDetector | None = None,
        replace: Callable[[str, str, str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.scenario, self.books, self.intake, self.broker = scenario, books, intake, broker
        self.time, self.event, self.router = time_, event, router
        self.verdicts = Verdicts(detector)
        self.lag = lag
        self.interval_wall = scenario.health.interval / time_.clock.scale
        self._stalls = stalls
        #: Wall time the last real broker outage was seen (None: none yet); see
        #: BROKER_OUTAGE_ROUNDS.
        self._broker_gap_wall: float | None = None
        #: Registry reads failed in a row, and the connection's reconnects already seen.
        self._failed_reads = 0
        self._reconnects = broker.reconnects()
        #: Judges zone coordinators (the spec's rule; the simulator's check phases).
        self.zone_detector = zone_detector or coordinator_detector(scenario.health)
        #: Starts a replacement (zone, category, reason) for each agent declared dead, its
        #: id or None (None: ``health.replace_failed`` is off).
        self.replace = replace
        #: The agents the predecessor counted in its pools (``inherit``).
        self.inherited: frozenset[str] = frozenset()
        #: Zones out of reach (an outage, a partition, a crashed zone coordinator) and their
        #: failovers; crashed team leads and theirs.
        self.unreachable = UnreachableZones(
            {zone.name: zone.standby for zone in scenario.topology.zones},
            scenario.health.zone_promotion,
            time_,
            event,
            intake,
            self.zone_detector,
            self._set_dark,
            self._declare_agents,
        )
        self.team_failover = TeamLeadFailover(
            time_, event, intake, self.zone_detector, scenario.health.zone_promotion
        )

    def inherit(self, history: list[dict[str, Any]]) -> None:
        """Taking over: the predecessor's members, from the event log (``sim.live.roster``),
        so one that died undeclared is joined and declared, not dropped unseen."""
        self.inherited = members(history)

    @property
    def wall(self) -> Callable[[], float]:
        return self.time.wall

    async def check_health(self, late_wall_s: float = 0.0) -> None:
        """One round of health checks (*late_wall_s*: how late the round woke).

        Pool membership follows: a new agent joins the balancer (and its free
        slots take queued work), one that is declared dead or goes offline
        leaves it, and the tasks it held are placed anew.
        """
        now = self.time.now()
        asked = self.wall()
        entries = await self._read_registry()
        if entries is None:
            return  # broker unavailable: no verdicts on missing data
        read = self.wall()
        self._note_reconnect(read)
        self._stall(now)
        # Own keys and fleets' bundles alike: one beat per agent, the newest (sim.live.beats).
        beats = agent_beats({key: entry.value for key, entry in entries.items()})
        for key in sorted(beats):  # join order is round robin's order: make it reproducible
            await self._take_beat(key, beats[key], now, asked, read)
        limit = FRESH_INTERVALS * self.interval_wall
        # Before scenario second 0 the fleet is still starting (on a small machine, 173
        # processes at once): rounds join agents but judge no one, as the simulator's health
        # checks start at 0. Nothing is measured then, and a verdict would be the start-up's.
        abstain = (
            now < 0.0 or self._abstain(late_wall_s, asked, limit) or self._after_broker_gap(read)
        )
        for view in list(self.books.agents.values()):
            if view.status == "offline":
                await self._leave_drained(view)
                continue
            await self._judge(view, view.agent_id in beats, now, asked, limit, abstain)

    async def _read_registry(self) -> dict[str, KvEntry] | None:
        """The agents' registry, None if the read failed (a real outage after a few in a row)."""
        try:
            entries = await self.broker.kv_entries(AGENTS_BUCKET)
        except Exception:
            stop_if_cancelled()
            self._failed_reads += 1
            if self._failed_reads >= BROKER_OUTAGE_ROUNDS:
                self._broker_gap_wall = self.wall()
            return None
        self._failed_reads = 0
        return entries

    def _note_reconnect(self, read: float) -> None:
        """A reconnect since the last round is an outage, however few reads it failed.

        The connection was lost and made again: the agents' beats resume from now.
        """
        reconnects = self.broker.reconnects()
        if reconnects != self._reconnects:
            self._reconnects = reconnects
            self._broker_gap_wall = read

    async def _take_beat(
        self, key: str, doc: dict[str, Any], now: float, asked: float, read: float
    ) -> None:
        """Book one registry entry: a new agent joins; a known one's state is updated."""
        view = self.books.agents.get(key)
        beat_wall = float(doc["wall"])
        if view is None or beat_wall > view.last_beat_wall:  # a new beat: how long it took
            self.lag.heartbeat_age(read - beat_wall)
        if view is None:
            view = await self._join_new(key, doc, now, asked)
            if view is None:
                return
        incarnation = doc.get("incarnation")
        if (
            view.dead_incarnation is not None
            and incarnation == view.dead_incarnation
            and beat_wall > view.last_beat_wall
            and doc["status"] != "offline"
        ):
            # The very process declared dead beat again: its beats were late, not missing.
            view.dead_incarnation = None
            self.lag.false_detection(key, now)
        view.incarnation = incarnation if isinstance(incarnation, str) else None
        view.status, view.in_flight = doc["status"], int(doc["in_flight"])
        view.slots = int(doc.get("slots", 1))
        view.last_beat_wall = max(view.last_beat_wall, beat_wall)

    async def _join_new(
        self, key: str, doc: dict[str, Any], now: float, asked: float
    ) -> AgentView | None:
        """An agent this coordinator has not seen joins its pool; None if it left or died."""
        beat_wall = float(doc["wall"])
        if doc["status"] == "offline":
            return None  # an agent that left before this coordinator saw it
        stale = asked - beat_wall > STALE_JOIN_INTERVALS * self.interval_wall
        if stale and key not in self.inherited:
            return None  # declared dead before this coordinator saw it (STALE_JOIN_INTERVALS)
        view = AgentView(key, doc["zone"], doc["category"])
        view.slots = int(doc.get("slots", 1))
        view.speed = float(doc.get("speed", 1.0))
        view.team = str(doc.get("team", ""))
        view.spot = bool(doc.get("spot", False))
        view.answers_calls = bool(doc.get("calls", False))
        view.last_beat_wall = beat_wall
        view.joined_s = max(0.0, now)  # (the first fleet joins before second 0)
        self.books.agents[key] = view
        self.books.requested.pop(key, None)
        joined: dict[str, Any] = {"zone": view.zone, "category": view.category, "team": view.team}
        if view.spot:
            joined["spot"] = True  # (the agents table's spot column)
        await self.event("agent_joined", key, **joined)
        await self.intake.join(view)
        return view

    async def _leave_drained(self, view: AgentView) -> None:
        """An agent gone offline leaves its pool once; what it held is placed anew."""
        if view.healthy:
            view.healthy = False
            await self.event("agent_left", view.agent_id, reason="drained")
            # Under a spot notice: its work goes back off the retry budget.
            noticed = self.books.end_notice(view.agent_id)
            await self.intake.gone(view, requeue=noticed)

    async def _judge(
        self, view: AgentView, seen: bool, now: float, asked: float, limit: float, abstain: bool
    ) -> None:
        """The detector's verdict on one agent: declared dead, or back in its pool.

        *seen*: it is in the registry; fresh if its last beat is at most *limit* older
        than the wall time the registry was *asked* for.
        """
        ok = seen and asked - view.last_beat_wall <= limit
        beat_s = self.time.at_wall(view.last_beat_wall) if seen else None
        transition = self.verdicts.judge(view.agent_id, now, ok, beat_s, abstain)
        down = transition is not None and transition.to_state is HealthState.UNHEALTHY
        if down and view.healthy:
            assert transition is not None
            await self._declare_dead(view, now, transition.reason)
        elif (
            ok
            and not view.healthy
            and view.zone not in self.router.down
            and view.agent_id not in self.verdicts.suspected
            and view.agent_id not in self.books.reclaimed  # taken back by the provider
        ):
            view.healthy = True  # back under the same id (restarted): a pool member again
            view.draining = False
            view.joined_s = now  # a new life, billed anew
            # (The simulator's name: its agent's host restarted and it serves again.)
            await self.event("agent_restarted", view.agent_id, zone=view.zone)
            await self.intake.join(view)

    def _abstain(self, late_wall_s: float, asked: float, limit: float) -> bool:
        """Whether this round may declare no one dead: it ran late, or the fleet is stale."""
        ages = [
            asked - v.last_beat_wall
            for v in self.books.agents.values()
            if v.healthy and v.status != "offline" and v.zone not in self.router.down
        ]
        stale = statistics.median_low(ages) if ages else 0.0
        if stale > limit:
            self.lag.fleet_stale(stale - 0.5 * self.interval_wall)
        if late_wall_s > LATE_INTERVALS * self.interval_wall or stale > limit:
            self.lag.abstained()
            return True
        return False

    def _after_broker_gap(self, read: float) -> bool:
        """Whether this round follows the broker's return too closely to judge anyone."""
        gap = self._broker_gap_wall
        grace = BROKER_GAP_INTERVALS * self.interval_wall + BROKER_RECOVERY_WALL_S
        if gap is None or read - gap > grace:
            return False
        self.lag.abstained()
        return True

    async def _declare_dead(self, view: AgentView, now: float, reason: str) -> None:
        view.dead_incarnation = view.incarnation  # (the same process beating again refutes it)
        await self._lost(view, now, reason)

    async def _lost(self, view: AgentView, now: float, reason: str) -> None:
        """The agent is declared dead: its work placed anew, a replacement asked for.

        Once: a health round and a zone's declaration run side by side, each
        awaiting the broker, and the zone lists its agents before the round
        may declare some of them (at the spec's fleet, 27 of a zone's 43 were
        declared twice and 12 replaced twice).
        """
        if not view.healthy:
            return
        view.healthy = False
        last_s = self.time.at_wall(view.last_beat_wall)
        held = self.intake.held(view.agent_id)
        await self.event(
            "agent_detected",
            view.agent_id,
            detect_s=now - last_s,
            redistributed=held,
            zone=view.zone,
            reason=reason,  # the detector's own words: which detector judged, and how
        )
        await self.intake.gone(view)
        if self.replace is not None:
            # As the simulator's failover: one from the reserve pool, in the nearest live zone
            # if the agent's own is dark.
            zone = self.router.replacement_zone(view.zone, self.intake.dispatcher.zones.dark)
            replacement = await self.replace(zone, view.category, f"replace {view.agent_id}")
            if replacement is not None:
                await self.event("agent_replaced", view.agent_id, replacement=replacement)

    def _stall(self, now: float) -> None:
        """The test hook: block the event loop mid-round in a round inside a stall window."""
        for start, end, wall_s in self._stalls:
            if start <= now < end:
                time.sleep(wall_s)  # deliberately blocking: the whole process falls behind
                return

    async def check_zones(self) -> None:
        """What chaos announced of the zones: out of reach (an outage, a partition, a zone
        coordinator's crash), a team lead crashed — each played as the simulator's failover
        plays it (``unreachable_zones``, ``team_failover``), the four announcements read at
        once (one round trip)."""
        keys = (ZONES_DOWN_KEY, ZONES_CUT_OFF_KEY, ZONE_COORDINATORS_DOWN_KEY, TEAM_LEADS_DOWN_KEY)
        entries = await asyncio.gather(*(self.broker.kv_get(LEASE_BUCKET, k) for k in keys))
        now = self.time.now()
        outages, cut_off, coordinators_down, leads_down = (announced(e, now) for e in entries)
        await self.unreachable.check(
            {OUTAGE: outages, CUT_OFF: cut_off, COORDINATOR: coordinators_down}
        )
        await self.team_failover.check(leads_down)
        await self.intake.probe_zones()

    def _set_dark(self, zone: str) -> None:
        """Calls to *zone* fail while it is out of reach (its coordinator's crash too)."""
        self.intake.dispatcher.mark_dark(zone, self.unreachable.dark(zone))

    async def _declare_agents(self, zone: str, now: float) -> None:
        """A dark zone's agents not yet declared dead are declared with it (``agent_detected``,
        what they held placed anew, each replaced in the nearest live zone), as the
        simulator declares and replaces every agent a zone outage took."""
        zone_agents = [a for a in self.books.agents.values() if a.zone == zone and a.healthy]
        for view in zone_agents:  # none answers: a team reopening must not take them back
            self.intake.dispatcher.unreachable.add(view.agent_id)
        for view in sorted(zone_agents, key=lambda a: a.agent_id):
            # Not the detector's verdict on the process: no dead incarnation to refute.
            await self._lost(view, now, f"zone {zone} declared down")
